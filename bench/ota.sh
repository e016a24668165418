#!/usr/bin/env bash
# Over-the-air updates on a devnode whose flash is an ext4 image on a loop
# device: push or registry to the new pods Ready, a failing update to its
# rollback, and the bytes each update writes to the flash's block device.
# Needs root (the loop mount, containerd) and `make build`. See
# bench/README.md ("OTA"). Extra arguments go to otabench (e.g. -runs 3).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench: run as root (the loop mount and containerd need it)" >&2
	exit 1
fi
for b in devnode mkimage runc podctl; do
	if [ ! -x "bin/$b" ]; then
		echo "bench: bin/$b is missing: run make build first" >&2
		exit 1
	fi
done
for t in mkfs.ext4 findmnt; do
	if ! command -v "$t" >/dev/null; then
		echo "bench: $t is missing (e2fsprogs, util-linux)" >&2
		exit 1
	fi
done

mkdir -p out
go build -o out/otabench ./bench/cmd/otabench
exec out/otabench -bin bin -report out/bench-ota.md "$@"
