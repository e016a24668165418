#!/bin/sh
# A stand-in for podman: logs its arguments to $FAKE_PODMAN_LOG, answers
# `pod ps` with $FAKE_PODMAN_PS and fails kube play of a file named bad.yaml.
echo "$*" >>"$FAKE_PODMAN_LOG"
case "$*" in
*"pod ps"*) cat "$FAKE_PODMAN_PS" ;;
*bad.yaml) echo "Error: bad manifest" >&2; exit 125 ;;
*"kube play"*) echo "Pod:"; echo 0123 ;;
esac
