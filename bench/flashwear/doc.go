// Package flashwear measures what a podboot board writes to its flash:
// it boots the qemu-arm64 image in QEMU (qemu/machine) with a QMP monitor
// of its own and reads the flash drive's counters (query-blockstats:
// bytes and write requests the guest sent to the virtio disk, and
// flushes) around each phase: the boot, a window at rest, pod starts and
// deletions through the API, container restarts, a reboot. For every
// phase it also names the files that changed, by comparing
// journal-replayed copies of the disk image with e2fsprogs.
//
// SD cards and eMMC wear out by the bytes and erase blocks written; a
// board that runs for years must write next to nothing at rest.
// bench/flashwrites.sh runs it; docs/wear.md explains every write.
package flashwear
