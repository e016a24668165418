package netbench

import (
	"net"
	"testing"
)

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100..1, unsorted
	}
	for _, c := range []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 99, 7},
		{"median of odd", []float64{3, 1, 2}, 50, 2},
		{"median of even is the lower", []float64{4, 1, 3, 2}, 50, 2},
		{"p99 of 100 is the 99th", hundred, 99, 99},
		{"p50 of 100", hundred, 50, 50},
		{"p99 of 20 is the largest", hundred[80:], 99, 20},
		{"p100", []float64{5, 9, 1}, 100, 9},
	} {
		if got := Percentile(c.xs, c.p); got != c.want {
			t.Errorf("%s: Percentile(p%g) = %g, want %g", c.name, c.p, got, c.want)
		}
	}
}

func TestStreamLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, size := range []int64{1, bufSize + 3, 8 << 20} {
		mbps, err := Stream(ln, func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }, size)
		if err != nil || mbps <= 0 {
			t.Errorf("Stream of %d bytes: %g MB/s, %v", size, mbps, err)
		}
	}
}

func TestStreamDialFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Stream(ln, func() (net.Conn, error) { return net.Dial("tcp", "127.0.0.1:1") }, 10)
	if err == nil {
		t.Error("Stream with a failing dial: no error")
	}
}
