// Package cmdline reads the podboot.* settings from the kernel command
// line.
package cmdline

import (
	"fmt"
	"strings"
)

// DefaultFlash is the flash partition when the command line names none.
const DefaultFlash = "LABEL=PODBOOT"

// Config is what PID 1 takes from the kernel command line.
type Config struct {
	// DebugShell is podboot.debug=shell: a shell on the console, and no
	// reboot on a fatal error.
	DebugShell bool
	// FlashLabel is the filesystem label of the flash (podboot.flash=LABEL=X).
	FlashLabel string
	// Console is the last console= device, without its options (ttyAMA0).
	Console string
}

// Parse parses /proc/cmdline's text. Unknown podboot.* values are errors
// returned beside a usable Config: a typo must be seen, but must not stop
// the boot.
func Parse(line string) (Config, error) {
	c := Config{FlashLabel: "PODBOOT"}
	var errs []string
	for _, f := range fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "console":
			dev, _, _ := strings.Cut(v, ",")
			c.Console = dev
		case "podboot.debug":
			switch v {
			case "shell":
				c.DebugShell = true
			case "", "off":
			default:
				errs = append(errs, fmt.Sprintf("podboot.debug=%s: want shell or off", v))
			}
		case "podboot.flash":
			label, ok := strings.CutPrefix(v, "LABEL=")
			if !ok || label == "" {
				errs = append(errs, fmt.Sprintf("podboot.flash=%s: want LABEL=<filesystem label>", v))
				continue
			}
			c.FlashLabel = label
		}
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("kernel command line: %s", strings.Join(errs, "; "))
	}
	return c, nil
}

// fields splits the way the kernel does: on spaces, except inside double
// quotes, which are dropped.
func fields(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case (r == ' ' || r == '\t' || r == '\n') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
