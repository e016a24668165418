#!/bin/sh
# A stand-in for bin/devnode; FAKE_DEVNODE_MODE picks how it behaves.
case "$FAKE_DEVNODE_MODE" in
ready)
	trap 'echo powering off >&2; exit 0' TERM
	echo "starting $*"
	echo ready
	while :; do sleep 0.05; done
	;;
stubborn)
	trap '' TERM
	echo ready
	while :; do sleep 0.05; done
	;;
silent)
	trap 'exit 0' TERM
	while :; do sleep 0.05; done
	;;
fail)
	echo "containerd: no such file" >&2
	exit 3
	;;
esac
