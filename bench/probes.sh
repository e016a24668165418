#!/usr/bin/env bash
# Probes on a devnode with the pod network: podagent's CPU with 100 pods
# probed every second (exec, httpGet, tcpSocket, and none as the baseline)
# and a failing liveness probe to its container running again. Needs root
# (containerd, a network namespace) and `make build`. See bench/README.md
# ("Probes"). Extra arguments go to probebench (e.g. -window 30s).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (containerd and the network namespace need it)" >&2
	exit 1
fi
for b in devnode mkimage runc cni/bridge cni/host-local; do
	if [ ! -x "bin/$b" ]; then
		echo "bench: bin/$b is missing: run make build first" >&2
		exit 1
	fi
done
for t in nsenter /bin/busybox; do
	if ! command -v "$t" >/dev/null; then
		echo "bench: $t is missing (util-linux, busybox-static)" >&2
		exit 1
	fi
done

mkdir -p out
go build -o out/probebench ./bench/cmd/probebench
exec out/probebench -bin bin -report out/bench-probes.md "$@"
