#!/usr/bin/env bash
# bench/flashwrites.sh [flashwear flags]
#
# What the qemu-arm64 image writes to its flash. Builds the image from the
# working tree (10 busybox pods on its flash: one logging a line every
# 10 s, one with an exec readiness probe), boots it under QEMU TCG with a
# QMP monitor of its own, and reads the flash drive's counters
# (query-blockstats: wr_bytes, wr_operations, flush_operations) around:
#   boot        QEMU's start to every pod running, plus -settle (1 min)
#   rest        -rest (20 min), sampled every minute, reported per hour
#   pod start   a pod created through the API, until it runs, + settle (x2)
#   pod delete  the same pods deleted, until gone, + settle (x2)
#   restart     a crash-looping pod's restarts (2), after its creation settled
#   reboot      the API's reboot, until every pod runs again, + settle
# For each phase it names the flash's files that changed (journal-replayed
# copies of disk.img read with debugfs). About 40 minutes with the
# defaults; quicker: -rest 2m -starts 1 -restarts 1.
# The report goes to stdout and out/flashwrites.md (and .json).
# Needs qemu-system-aarch64, e2fsprogs and make image's prerequisites
# (make deps). See bench/README.md, "Flash writes", and docs/wear.md.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in qemu-system-aarch64 debugfs e2fsck; do
	command -v $tool >/dev/null || { echo "bench/flashwrites.sh: $tool is missing (make deps)" >&2; exit 1; }
done
mkdir -p out
go build -o out/flashwear ./bench/cmd/flashwear
exec out/flashwear -report out/flashwrites.md -json out/flashwrites.json "$@"
