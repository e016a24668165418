package flashwear

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes the phases as a table (bytes per event, per hour
// at rest), the rest window's cumulative counters, and the files each
// phase changed.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "qemu-arm64 image, %d pods on the flash; QMP query-blockstats of the flash drive (virtio-blk): bytes and write requests the guest sent, and flushes.\n\n", r.Pods)
	b.WriteString("| phase | window | events | bytes written | write requests | flushes | per event, or per hour at rest |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range r.Phases {
		per := ""
		switch {
		case p.Events > 0:
			per = fmt.Sprintf("%s, %.1f requests", size(float64(p.WrBytes)/float64(p.Events)), float64(p.WrOps)/float64(p.Events))
		case p.Window > 0:
			h := float64(time.Hour) / float64(p.Window)
			per = fmt.Sprintf("%s/h, %.1f requests/h", size(float64(p.WrBytes)*h), float64(p.WrOps)*h)
		}
		name := p.Name
		if p.Note != "" {
			name += " (" + p.Note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %d | %s |\n", name, p.Window.Round(time.Second), p.Events, size(float64(p.WrBytes)), p.WrOps, p.FlushOps, per)
	}
	if len(r.Rest) > 1 {
		b.WriteString("\nAt rest, cumulative since the window began (bytes / write requests / flushes):")
		base := r.Rest[0]
		for _, pt := range r.Rest[1:] {
			fmt.Fprintf(&b, " %s %d/%d/%d;", pt.At.Round(time.Second), pt.WrBytes-base.WrBytes, pt.WrOps-base.WrOps, pt.FlushOps-base.FlushOps)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nFiles of the flash that changed (journal-replayed copies of the disk image, e2fsprogs):\n\n")
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "- **%s**:", p.Name)
		switch {
		case p.changesErr != nil:
			first, _, _ := strings.Cut(p.changesErr.Error(), "\n")
			fmt.Fprintf(&b, " not known (%s)", first)
		case len(p.Changes) == 0:
			b.WriteString(" none")
		}
		b.WriteString("\n")
		for _, c := range p.Changes {
			fmt.Fprintf(&b, "  - `%s`: %s\n", c.Path, c.What)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// size renders a byte count in KiB or MiB, as a disk's 4 KiB blocks
// read best.
func size(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}
