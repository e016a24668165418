#!/usr/bin/env bash
# The resource benchmarks: CPU limit accuracy, OOM time to status and the
# agent's CPU cost of metrics scrapes, on a devnode. Needs root and
# `make build`; see bench/README.md, "Resources (cgroups)". Extra arguments
# go to podbench (e.g. ./bench/resources.sh -cpu-samples 1 -oom-runs 3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (containerd and runc need it)" >&2
	exit 1
fi
for b in devnode mkimage runc; do
	if [ ! -x "bin/$b" ]; then
		echo "bench: bin/$b is missing: run make build first" >&2
		exit 1
	fi
done

mkdir -p out
go build -o out/podbench ./bench/cmd/podbench
exec out/podbench -resources -bin bin -report out/bench-resources.md -json out/bench-resources.json "$@"
