package podbench

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestWriteMarkdown(t *testing.T) {
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	full := &Results{
		Started:      time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC),
		Sequential:   50,
		Burst:        20,
		PodbootSeq:   Summary{N: 50, P50: ms(95.4), P99: ms(180), Max: ms(180)},
		PodbootBurst: Summary{N: 20, P50: ms(610), P99: ms(1250), Max: ms(1250)},
		PodmanSeq:    Summary{N: 50, P50: ms(281), P99: ms(402), Max: ms(402)},
		PodmanBurst:  Summary{N: 20, P50: ms(2900), P99: ms(4100), Max: ms(4100)},
		Memory: map[int]Memory{
			0:  {Agent: 18_500_000, Containerd: 30_000_000},
			10: {Agent: 21_000_000, Containerd: 33_000_000, Shims: 40_000_000, ShimCount: 10, AgentThreads: 9},
			50: {Agent: 26_000_000, Containerd: 38_000_000, Shims: 190_000_000, ShimCount: 50},
		},
		AgentCPU:  0.42,
		CPUWindow: time.Minute,
		CPUPods:   50,
		Notes:     []string{"podboot: the API watch was reopened 1 times"},
		Seen:      map[string][]float64{"podboot-seq": {640, 650, 660}, "podboot-burst": {700}},
	}
	partial := &Results{
		Started:    time.Date(2026, 11, 24, 15, 0, 0, 0, time.UTC),
		Sequential: 50,
		Burst:      20,
		PodmanSeq:  Summary{N: 50, P50: ms(281), P99: ms(402), Max: ms(402)},
		Memory:     map[int]Memory{},
		AgentCPU:   -1,
		PodbootSeq: Summary{},
	}
	machine := Machine{CPUs: 2, OS: "Debian 12.9", Kernel: "6.1.0-test"}
	for name, r := range map[string]*Results{"full": full, "partial": partial} {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			r.WriteMarkdown(&got, machine)
			golden := "testdata/report-" + name + ".md"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden report (go test -update writes it): %v", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("WriteMarkdown (-want +got):\n%s", diff)
			}
		})
	}
}
