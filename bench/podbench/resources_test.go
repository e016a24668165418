package podbench

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

func TestLimitedPodManifest(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  LimitedPod
		want corev1.PodSpec
	}{
		{"cpu limit", LimitedPod{Name: "p", Script: `while :; do :; done`, CPULimit: "250m", GracePeriod: 1},
			corev1.PodSpec{TerminationGracePeriodSeconds: ptr(int64(1)), Containers: []corev1.Container{{
				Name: "c0", Image: Image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:   []string{"sh", "-c", `while :; do :; done`},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")}},
			}}}},
		{"memory limit, never restart", LimitedPod{Name: "p", Script: `read up idle < /proc/uptime; echo "start=$up"`, MemoryLimit: "32Mi", RestartPolicy: "Never"},
			corev1.PodSpec{TerminationGracePeriodSeconds: ptr(int64(0)), RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
				Name: "c0", Image: Image, ImagePullPolicy: corev1.PullIfNotPresent,
				Command:   []string{"sh", "-c", `read up idle < /proc/uptime; echo "start=$up"`},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
			}}}},
		{"no limits", LimitedPod{Name: "p", Script: "sleep 1"},
			corev1.PodSpec{TerminationGracePeriodSeconds: ptr(int64(0)), Containers: []corev1.Container{{
				Name: "c0", Image: Image, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", "sleep 1"},
			}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pod corev1.Pod
			if err := yaml.UnmarshalStrict(tc.pod.Manifest(), &pod); err != nil {
				t.Fatalf("manifest does not decode: %v\n%s", err, tc.pod.Manifest())
			}
			if pod.Kind != "Pod" || pod.APIVersion != "v1" || pod.Name != tc.pod.Name {
				t.Errorf("kind %q apiVersion %q name %q", pod.Kind, pod.APIVersion, pod.Name)
			}
			if diff := cmp.Diff(tc.want, pod.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCgroupsAndUsageFile(t *testing.T) {
	for _, tc := range []struct {
		name, log, wantPath string
		wantV2, wantErr     bool
	}{
		{"v1 hybrid host", "12:pids:/kubepods/besteffort/podu/c\n4:cpu,cpuacct:/kubepods/burstable/podu/c\n0::/\nprobed\n",
			"/sys/fs/cgroup/cpuacct/kubepods/burstable/podu/c/cpuacct.usage", false, false},
		{"v2 host", "0::/kubepods/burstable/podu/c\nprobed\n", "/sys/fs/cgroup/kubepods/burstable/podu/c/cpu.stat", true, false},
		{"v2 root only", "0::/\n", "", false, true},
		{"nothing printed", "probed\n", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, v2, err := CPUUsageFile("/sys/fs/cgroup", CgroupsOf(tc.log))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if path != tc.wantPath || v2 != tc.wantV2 {
				t.Errorf("got %q v2=%v, want %q v2=%v", path, v2, tc.wantPath, tc.wantV2)
			}
		})
	}
}

func TestParseCPUUsage(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		v2         bool
		want       time.Duration
		wantErr    bool
	}{
		{"v1 nanoseconds", "1500000000\n", false, 1500 * time.Millisecond, false},
		{"v2 usage_usec", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n", true, 2500 * time.Millisecond, false},
		{"v2 without usage", "user_usec 1\n", true, 0, true},
		{"v1 garbage", "max\n", false, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCPUUsage(tc.data, tc.v2)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStartMark(t *testing.T) {
	for _, tc := range []struct {
		name, log string
		want      time.Duration
		wantErr   bool
	}{
		{"mark", "start=28123.45\ndd: out of memory\n", 28123450 * time.Millisecond, false},
		{"after other lines", "x\nstart=1.00\n", time.Second, false},
		{"no mark", "dd: killed\n", 0, true},
		{"empty value", "start=\n", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStartMark(tc.log)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestSummarizeRatiosAndPercentile(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []float64
		want Ratios
	}{
		{"odd", []float64{1.02, 0.9, 1.0}, Ratios{3, 1.0, 0.9, 1.02}},
		{"even: mean of the middle two", []float64{0.8, 1.0, 0.9, 1.1}, Ratios{4, 0.95, 0.8, 1.1}},
		{"none", nil, Ratios{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, SummarizeRatios(tc.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 50, 5 * time.Millisecond},
		{ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 90, 9 * time.Millisecond},
		{ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), 100, 10 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestScrapeCost(t *testing.T) {
	for _, tc := range []struct {
		name                                         string
		quietCPU, quietWall, scrapedCPU, scrapedWall time.Duration
		scrapes                                      int
		want                                         time.Duration
	}{
		{"baseline subtracted", 300 * time.Millisecond, time.Minute, 540 * time.Millisecond, time.Minute, 12, 20 * time.Millisecond},
		{"baseline scaled to the longer window", 300 * time.Millisecond, time.Minute, 1200 * time.Millisecond, 2 * time.Minute, 20, 30 * time.Millisecond},
		{"no scrapes", time.Second, time.Minute, time.Second, time.Minute, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ScrapeCost(tc.quietCPU, tc.quietWall, tc.scrapedCPU, tc.scrapedWall, tc.scrapes); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := CPUPercent(600*time.Millisecond, time.Minute); got != 1 {
		t.Errorf("CPUPercent(600ms, 1m) = %v, want 1", got)
	}
}

func TestOOMKilled(t *testing.T) {
	term := func(reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason}}}
	}
	for _, tc := range []struct {
		name string
		cs   []corev1.ContainerStatus
		want bool
	}{
		{"OOMKilled", []corev1.ContainerStatus{term("OOMKilled")}, true},
		{"Error", []corev1.ContainerStatus{term("Error")}, false},
		{"running", []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}, false},
		{"earlier OOM only in lastState", []corev1.ContainerStatus{{LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled"}}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OOMKilled(&corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: tc.cs}}); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestResourcesMarkdown(t *testing.T) {
	r := &ResourcesResults{
		CPU:         []CPULimitResult{{Limit: "100m", Shares: []float64{0.099, 0.1}, Ratios: SummarizeRatios([]float64{0.99, 1}), Throttled: []float64{0.97, 0.97}}},
		OOM:         []float64{30, 40},
		MetricsPods: 50, Scrapes: 12, ScrapeEvery: 5 * time.Second,
	}
	var b strings.Builder
	r.WriteMarkdown(&b, Machine{CPUs: 2, OS: "Debian 12", Kernel: "6"})
	for _, want := range []string{"| 100m | 2 | 0.995 | 0.990 | 1.000 | 0.0990 0.1000 | 97 % |", "Each run, ms: 30 40", "every 5s (12 scrapes)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestThrottling(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Throttling
		wantErr    bool
	}{
		{"v1", "nr_periods 100\nnr_throttled 97\nthrottled_time 123\n", Throttling{100, 97}, false},
		{"v2", "usage_usec 5\nuser_usec 4\nsystem_usec 1\nnr_periods 10\nnr_throttled 3\nthrottled_usec 9\n", Throttling{10, 3}, false},
		{"no quota counters", "usage_usec 5\n", Throttling{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseThrottling(tc.data)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	path, err := CPUStatFile("/sys/fs/cgroup", CgroupsOf("4:cpu,cpuacct:/kubepods/podu/c\n"))
	if want := "/sys/fs/cgroup/cpu/kubepods/podu/c/cpu.stat"; err != nil || path != want {
		t.Errorf("CPUStatFile v1: %q, %v; want %q", path, err, want)
	}
}
