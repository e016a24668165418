package power

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func event(typ, code uint16, value int32) []byte {
	b := make([]byte, eventSize)
	binary.NativeEndian.PutUint64(b[0:], 1700000000) // tv_sec
	binary.NativeEndian.PutUint64(b[8:], 123)        // tv_usec
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestParseEvent(t *testing.T) {
	got, err := ParseEvent(event(EvKey, KeyPower, 1))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Event{Type: 1, Code: 116, Value: 1}, got); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	if _, err := ParseEvent(make([]byte, 16)); err == nil {
		t.Error("16-byte event (a 32-bit timeval): no error")
	}
}

func TestWaitPowerKey(t *testing.T) {
	const evSyn, keyA = 0, 30
	for _, tc := range []struct {
		name   string
		events [][]byte
		want   error
	}{
		{"press after other keys", [][]byte{event(EvKey, keyA, 1), event(evSyn, 0, 0), event(EvKey, KeyPower, 1)}, nil},
		// gpio-keys sends press then release; a release or autorepeat alone is not a press.
		{"release only", [][]byte{event(EvKey, KeyPower, 0), event(EvKey, KeyPower, 2)}, io.EOF},
		{"power value on another type", [][]byte{event(evSyn, KeyPower, 1)}, io.EOF},
		{"torn event", [][]byte{event(EvKey, KeyPower, 1)[:10]}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := WaitPowerKey(bytes.NewReader(bytes.Join(tc.events, nil)))
			if !errors.Is(err, tc.want) {
				t.Errorf("WaitPowerKey = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFromSignal(t *testing.T) {
	got := map[string]string{}
	for _, s := range append(Signals, syscall.SIGHUP) {
		got[s.String()] = FromSignal(s).String()
	}
	want := map[string]string{
		"user defined signal 2": "poweroff",
		"power failure":         "poweroff",
		"terminated":            "reboot",
		"interrupt":             "reboot",
		"hangup":                "none",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("signal actions (-want +got):\n%s", diff)
	}
	if PowerOff.RebootCmd() != unix.LINUX_REBOOT_CMD_POWER_OFF || Reboot.RebootCmd() != unix.LINUX_REBOOT_CMD_RESTART {
		t.Error("reboot(2) commands swapped")
	}
}
