package logs

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

const (
	// timeFormatIn parses the timestamps of any CRI writer (kubelet's
	// RFC3339NanoLenient).
	timeFormatIn = "2006-01-02T15:04:05.999999999Z07:00"
	// timeFormatOut is what `kubectl logs --timestamps` prints (kubelet's
	// RFC3339NanoFixed): fixed width, so columns line up.
	timeFormatOut = "2006-01-02T15:04:05.000000000Z07:00"
)

// criLine is one physical line of a CRI log file.
type criLine struct {
	ts      time.Time
	stream  string
	partial bool
	text    []byte // without the line ending
}

// parseCRILine decodes one line (without its \n) as kubelet's parseCRILog
// does: tags after the first are ignored (the format reserves them), and
// anything that is not timestamp, stream and tag is an error.
func parseCRILine(b []byte) (criLine, error) {
	var l criLine
	i := bytes.IndexByte(b, ' ')
	if i < 0 {
		return l, errors.New("timestamp is not found")
	}
	ts, err := time.Parse(timeFormatIn, string(b[:i]))
	if err != nil {
		return l, fmt.Errorf("unexpected timestamp %q: %w", b[:i], err)
	}
	l.ts = ts
	b = b[i+1:]
	i = bytes.IndexByte(b, ' ')
	if i < 0 {
		return l, errors.New("stream type is not found")
	}
	switch s := string(b[:i]); s {
	case Stdout, Stderr:
		l.stream = s
	default:
		return l, fmt.Errorf("unexpected stream type %q", s)
	}
	b = b[i+1:]
	i = bytes.IndexByte(b, ' ')
	if i < 0 {
		return l, errors.New("log tag is not found")
	}
	tag, _, _ := bytes.Cut(b[:i], []byte{':'})
	l.partial = string(tag) == tagPartial
	l.text = b[i+1:]
	return l, nil
}

// entry is one logical line: P chunks joined with their final F.
type entry struct {
	ts      time.Time // of the first chunk
	stream  string
	text    []byte
	newline bool // false for a line whose end never came
}

// maxJoined bounds a line joined from P chunks, so that a container that
// never ends its line cannot make a reader hold unbounded memory; a longer
// line is emitted in pieces without newlines, which is what kubelet
// prints for every P chunk.
const maxJoined = 1 << 20

// decoder joins P chunks per stream.
type decoder struct {
	pending map[string]*entry
}

// feed decodes one physical line; complete says whether it ended with \n.
// It returns the logical lines that are now whole. A corrupt line is
// skipped, as kubelet skips it.
func (d *decoder) feed(b []byte, complete bool, emit func(entry) error) error {
	l, err := parseCRILine(b)
	if err != nil {
		return nil
	}
	if d.pending == nil {
		d.pending = make(map[string]*entry, 2)
	}
	p := d.pending[l.stream]
	if l.partial {
		if p == nil {
			p = &entry{ts: l.ts, stream: l.stream}
			d.pending[l.stream] = p
		}
		p.text = append(p.text, l.text...)
		if len(p.text) >= maxJoined {
			delete(d.pending, l.stream)
			return emit(*p)
		}
		return nil
	}
	e := entry{ts: l.ts, stream: l.stream, newline: complete}
	if p != nil {
		e.ts = p.ts
		e.text = append(p.text, l.text...)
		delete(d.pending, l.stream)
	} else {
		e.text = append([]byte(nil), l.text...)
	}
	return emit(e)
}

// flush emits the lines whose end never came (a container that stopped in
// the middle of a line), oldest first.
func (d *decoder) flush(emit func(entry) error) error {
	for len(d.pending) > 0 {
		var first *entry
		for _, p := range d.pending {
			if first == nil || p.ts.Before(first.ts) || (p.ts.Equal(first.ts) && p.stream < first.stream) {
				first = p
			}
		}
		delete(d.pending, first.stream)
		if err := emit(*first); err != nil {
			return err
		}
	}
	return nil
}
