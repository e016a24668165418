// Package init is podboot's PID 1, in pieces: cmd/init is the binary the
// initramfs runs as /init; mounts is its mount table; kmod loads the
// board's kernel modules in the order the image builder resolved; flash
// finds, checks and mounts the PODBOOT partition; clock keeps time from
// going backwards across boots; power turns signals and the power button
// into poweroff and reboot; supervise runs containerd and podagent;
// svclog bounds their logs; containerd lays out the daemon; usbstick
// mounts the OTA stick (a filesystem labelled PODBOOT-OTA). See
// docs/init.md for the boot sequence and the reasons behind it.
package init
