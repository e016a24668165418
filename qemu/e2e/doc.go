// Package e2e is the end-to-end test harness for podboot images under QEMU
// (TCG): it builds an image with the firmware builder, boots it with
// qemu/boot in the background, waits for the agent's API through the
// forwarded port, runs the real kubectl and podctl against it, types into
// the debug shell over the serial socket, edits the flash image offline
// between boots (debugfs on disk.img), and powers the board off the ways a
// person does (podctl poweroff, the power button).
//
// The tests in this package are in make test. They need QEMU, the arm64
// cross toolchain the builder needs, kubectl and e2fsprogs; without them
// they skip with the reason, or fail under PODBOOT_INTEGRATION=1.
package e2e
