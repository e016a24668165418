package ota

import "golang.org/x/sys/unix"

// ClockSynced reports whether the kernel's clock is synchronized (an NTP
// client, PID 1's included, cleared STA_UNSYNC): what timedatectl calls
// "System clock synchronized". A board without an RTC that has not
// reached a time server yet is not, and its statements' expiry is not
// checked.
func ClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	return err == nil && state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
