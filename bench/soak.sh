#!/usr/bin/env bash
# bench/soak.sh [soak flags]
#
# The soak: a devnode with 20 pods (steady, probed, crash-looping,
# replaced by a manifest edit every minute, logging 1 MiB a minute) for
# 30 minutes, sampled every minute: the agent's RSS, goroutines, threads
# and fds, containerd's RSS and fds, the shims, the state tmpfs and the
# container logs in it, and the mounts, cgroups and veths of the node.
# Each series is judged after a 5-minute warm-up (bench/soak/analyze.go);
# the exit status is 3 if one grows without bound. Hours on request:
#   ./bench/soak.sh -duration 8h
# The state directory's writes at rest (/proc/PID/io) instead:
#   ./bench/soak.sh -writes [-writes-window 10m]
# Needs root and make build. The report goes to stdout and to
# out/soak-results.md (out/soak-results.json has every sample); with
# -writes, out/soak-writes.md and .json. See bench/README.md, "Soak".
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench/soak.sh: run as root (containerd, runc, network namespaces and tmpfs mounts need it)" >&2
	exit 1
fi
for b in devnode mkimage runc podagent containerd cni/bridge cni/host-local; do
	if [ ! -x "bin/$b" ]; then
		echo "bench/soak.sh: bin/$b is missing: run make build first" >&2
		exit 1
	fi
done

name=soak-results
for a in "$@"; do
	[ "$a" = -writes ] && name=soak-writes
done
mkdir -p out
go build -o out/soak ./bench/cmd/soak
exec out/soak -bin bin -report "out/$name.md" -json "out/$name.json" "$@"
