package netbench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// bufSize is the size of each write and read: large enough that the
// syscalls, not the copying loop, bound a stream.
const bufSize = 128 << 10

// Stream sends size bytes over one TCP connection, from dial to the
// listener's next accepted connection, and returns the rate in MB/s
// (10^6 bytes per second). The clock runs from the connection being
// established to the receiver reading the sender's close: every byte has
// arrived. The sockets may live in different network namespaces; after
// they are made, which thread reads or writes them does not matter.
func Stream(ln net.Listener, dial func() (net.Conn, error), size int64) (float64, error) {
	type received struct {
		n   int64
		at  time.Time
		err error
	}
	done := make(chan received, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- received{err: fmt.Errorf("accept: %w", err)}
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(discard{}, c, make([]byte, bufSize))
		done <- received{n: n, at: time.Now(), err: err}
	}()
	c, err := dial()
	if err != nil {
		ln.Close() // unblocks Accept; the caller cannot use ln after a failed dial anyway
		<-done
		return 0, fmt.Errorf("dial %s: %w", ln.Addr(), err)
	}
	start := time.Now()
	buf := make([]byte, bufSize)
	var sent int64
	for sent < size && err == nil {
		var n int
		n, err = c.Write(buf[:min(int64(len(buf)), size-sent)])
		sent += int64(n)
	}
	c.Close()
	r := <-done
	if err = errors.Join(err, r.err); err != nil {
		return 0, fmt.Errorf("stream to %s: %w", ln.Addr(), err)
	}
	if r.n != size {
		return 0, fmt.Errorf("stream to %s: received %d bytes of %d", ln.Addr(), r.n, size)
	}
	return float64(size) / r.at.Sub(start).Seconds() / 1e6, nil
}

// discard is io.Discard without its ReaderFrom, whose 8 KiB reads would
// replace CopyBuffer's buffer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Percentile is the p-th percentile of xs by nearest rank (as
// bench/podbench reports its latencies): with 100 samples or fewer, p99
// is the largest. xs is not modified; an empty xs gives 0.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	rank := int(float64(len(s))*p/100 + 0.9999999) // ceil, without float noise at exact ranks
	return s[min(max(rank, 1), len(s))-1]
}
