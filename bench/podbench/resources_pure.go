package podbench

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LimitedPod is a one-container pod with resource limits, running a shell
// script from the benchmark image. Requests default to the limits, as the
// API server defaults them.
type LimitedPod struct {
	Name          string
	Script        string // run by sh -c
	CPULimit      string // a quantity ("250m"); empty: none
	MemoryLimit   string // a quantity ("32Mi"); empty: none
	RestartPolicy string // empty: Always
	GracePeriod   int
}

// Manifest renders the pod as a Kubernetes v1 Pod manifest in YAML.
func (p LimitedPod) Manifest() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  labels:\n    app: podbench\n", p.Name)
	fmt.Fprintf(&b, "spec:\n  terminationGracePeriodSeconds: %d\n", p.GracePeriod)
	if p.RestartPolicy != "" {
		fmt.Fprintf(&b, "  restartPolicy: %s\n", p.RestartPolicy)
	}
	fmt.Fprintf(&b, "  containers:\n  - name: c0\n    image: %s\n    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", %s]\n",
		Image, strconv.Quote(p.Script))
	if p.CPULimit != "" || p.MemoryLimit != "" {
		b.WriteString("    resources:\n      limits:\n")
		if p.CPULimit != "" {
			fmt.Fprintf(&b, "        cpu: %q\n", p.CPULimit)
		}
		if p.MemoryLimit != "" {
			fmt.Fprintf(&b, "        memory: %q\n", p.MemoryLimit)
		}
	}
	return []byte(b.String())
}

// cgroupLine is a line of /proc/PID/cgroup: "4:cpu,cpuacct:/kubepods/...",
// or "0::/..." for the unified hierarchy.
var cgroupLine = regexp.MustCompile(`^\d+:([^:]*):(/.*)$`)

// CgroupsOf parses the /proc/self/cgroup lines a container printed in its
// log into the path of each v1 controller; "" names the unified hierarchy.
// Other lines are ignored.
func CgroupsOf(log string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		m := cgroupLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		for _, c := range strings.Split(m[1], ",") {
			out[strings.TrimPrefix(c, "name=")] = m[2]
		}
	}
	return out
}

// CPUUsageFile says where the CPU time of the cgroup a container printed
// is counted: cpuacct.usage (nanoseconds) on cgroup v1, else cpu.stat's
// usage_usec on cgroup v2. root is the cgroup mount ("/sys/fs/cgroup").
func CPUUsageFile(root string, cgroups map[string]string) (path string, v2 bool, err error) {
	if p, ok := cgroups["cpuacct"]; ok {
		return filepath.Join(root, "cpuacct", p, "cpuacct.usage"), false, nil
	}
	if p, ok := cgroups[""]; ok && p != "/" {
		return filepath.Join(root, p, "cpu.stat"), true, nil
	}
	return "", false, fmt.Errorf("no cpuacct (v1) or unified (v2) cgroup in %v", cgroups)
}

// ParseCPUUsage reads the cumulative CPU time out of cpuacct.usage (v1)
// or cpu.stat (v2).
func ParseCPUUsage(data string, v2 bool) (time.Duration, error) {
	if !v2 {
		ns, err := strconv.ParseUint(strings.TrimSpace(data), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse cpuacct.usage %q: %w", data, err)
		}
		return time.Duration(ns), nil
	}
	for line := range strings.Lines(data) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "usage_usec "); ok {
			us, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse cpu.stat usage_usec %q: %w", v, err)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("cpu.stat has no usage_usec: %q", data)
}

// ReadCPUUsage reads the CPU time of a cgroup from the file CPUUsageFile
// named.
func ReadCPUUsage(path string, v2 bool) (time.Duration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read cgroup cpu usage: %w", err)
	}
	return ParseCPUUsage(string(data), v2)
}

// StartMark is the line an OOM pod prints right before it execs the
// allocation: "start=" and the host's /proc/uptime in seconds.
const StartMark = "start="

// ParseStartMark finds the StartMark line in a container's log and returns
// the uptime it holds.
func ParseStartMark(log string) (time.Duration, error) {
	for line := range strings.Lines(log) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), StartMark)
		if !ok {
			continue
		}
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s < 0 {
			return 0, fmt.Errorf("parse %s%q: not seconds of uptime", StartMark, v)
		}
		return time.Duration(math.Round(s * 1e9)), nil
	}
	return 0, fmt.Errorf("no %s line in the log %q", StartMark, log)
}

// Ratios condenses the measured-share-to-limit ratios of one CPU limit.
type Ratios struct {
	N                int
	Median, Min, Max float64
}

// SummarizeRatios returns the median (the mean of the middle two of an
// even count), minimum and maximum.
func SummarizeRatios(r []float64) Ratios {
	if len(r) == 0 {
		return Ratios{}
	}
	s := slices.Clone(r)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Ratios{N: len(s), Median: med, Min: s[0], Max: s[len(s)-1]}
}

// Percentile is the nearest-rank percentile p of samples.
func Percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	return nearestRank(s, p)
}

// CPUPercent is cpu over wall as a percentage of one core.
func CPUPercent(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * float64(cpu) / float64(wall)
}

// ScrapeCost is what the scrapes added to the agent's CPU: the CPU of the
// scraped window minus the quiet window's rate over as long, split over
// the scrapes.
func ScrapeCost(quietCPU, quietWall, scrapedCPU, scrapedWall time.Duration, scrapes int) time.Duration {
	if scrapes == 0 || quietWall <= 0 {
		return 0
	}
	baseline := time.Duration(float64(quietCPU) * float64(scrapedWall) / float64(quietWall))
	return (scrapedCPU - baseline) / time.Duration(scrapes)
}

// CPUStatFile is the cpu controller's cpu.stat of the cgroup a container
// printed: nr_periods and nr_throttled count the quota's periods on v1 and
// v2 alike.
func CPUStatFile(root string, cgroups map[string]string) (string, error) {
	if p, ok := cgroups["cpu"]; ok {
		return filepath.Join(root, "cpu", p, "cpu.stat"), nil
	}
	if p, ok := cgroups[""]; ok && p != "/" {
		return filepath.Join(root, p, "cpu.stat"), nil
	}
	return "", fmt.Errorf("no cpu (v1) or unified (v2) cgroup in %v", cgroups)
}

// Throttling is the quota's periods so far, from cpu.stat.
type Throttling struct {
	Periods, Throttled uint64
}

// ParseThrottling reads nr_periods and nr_throttled out of cpu.stat.
func ParseThrottling(data string) (Throttling, error) {
	var t Throttling
	var seen int
	for line := range strings.Lines(data) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
		var dst *uint64
		switch k {
		case "nr_periods":
			dst = &t.Periods
		case "nr_throttled":
			dst = &t.Throttled
		default:
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return Throttling{}, fmt.Errorf("parse cpu.stat %s %q: %w", k, v, err)
		}
		*dst = n
		seen++
	}
	if seen != 2 {
		return Throttling{}, fmt.Errorf("cpu.stat lacks nr_periods or nr_throttled: %q", data)
	}
	return t, nil
}
