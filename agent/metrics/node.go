package metrics

import (
	"fmt"
	"strconv"

	"github.com/prometheus/procfs"
)

// nodeSample is what /proc says about the whole board at one time.
type nodeSample struct {
	// busySeconds is CPU time not idle nor waiting for I/O, summed over
	// the CPUs (user, nice, system, irq, softirq, steal; guest time is
	// already inside user and nice).
	busySeconds float64
	perCPU      map[int64]procfs.CPUStat
	memTotal    uint64 // bytes
	memAvail    uint64 // bytes
}

func (m *Metrics) readNode() (nodeSample, error) {
	stat, err := m.proc.Stat()
	if err != nil {
		return nodeSample{}, fmt.Errorf("read node CPU time: %w", err)
	}
	mem, err := m.proc.Meminfo()
	if err != nil {
		return nodeSample{}, fmt.Errorf("read node memory: %w", err)
	}
	if mem.MemTotalBytes == nil || mem.MemAvailableBytes == nil {
		return nodeSample{}, fmt.Errorf("read node memory: %s/meminfo has no MemTotal or MemAvailable", m.procRoot)
	}
	c := stat.CPUTotal
	return nodeSample{
		busySeconds: c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal,
		perCPU:      stat.CPU,
		memTotal:    *mem.MemTotalBytes,
		memAvail:    *mem.MemAvailableBytes,
	}, nil
}

// cpuModes are node_exporter's modes of node_cpu_seconds_total.
func cpuModes(c procfs.CPUStat) []struct {
	mode    string
	seconds float64
} {
	return []struct {
		mode    string
		seconds float64
	}{
		{"idle", c.Idle}, {"iowait", c.Iowait}, {"irq", c.IRQ}, {"nice", c.Nice},
		{"softirq", c.SoftIRQ}, {"steal", c.Steal}, {"system", c.System}, {"user", c.User},
	}
}

func cpuLabel(n int64) string { return strconv.FormatInt(n, 10) }
