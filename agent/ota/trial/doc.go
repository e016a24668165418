// Package trial is the durable state machine of an over-the-air update:
// stage a generation, begin its trial, count its starts, commit it or roll
// it back, and recover from a power cut at any point of any of these.
//
// It knows nothing of pods: a generation is an opaque directory that a fill
// function writes, so a whole firmware image (Pi tryboot, UEFI BootNext) can
// use the same machine later. Every file operation goes through the FS seam,
// so the tests can cut the power at every write, fsync and rename in turn
// (package crashfs) and check that recovery always lands on one whole
// generation. docs/ota.md ("State machine") explains the order of the
// writes and why each step is safe to crash at.
package trial
