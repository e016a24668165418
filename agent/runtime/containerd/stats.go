package containerd

import (
	"context"
	"fmt"
	"time"

	cg1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
	cg2stats "github.com/containerd/cgroups/v3/cgroup2/stats"
	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/typeurl/v2"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

var _ runtime.StatsReader = (*Runtime)(nil)

// ContainerStats reads the cgroup figures of every running container with
// podboot's labels: three calls to containerd whatever the number of
// containers (containers, tasks, their metrics).
func (r *Runtime) ContainerStats(ctx context.Context) ([]runtime.ContainerStats, error) {
	ctx = r.withNamespace(ctx)
	ctrs, err := r.client.ContainerService().List(ctx, fmt.Sprintf("labels.%q", LabelPodUID))
	if err != nil {
		return nil, fmt.Errorf("container stats: list containers: %w", err)
	}
	labels := make(map[string]map[string]string, len(ctrs))
	for _, c := range ctrs {
		labels[c.ID] = c.Labels
	}
	list, err := r.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("container stats: list tasks: %w", err)
	}
	// Only running tasks: a stopped task has no cgroup left to read, and
	// asking makes containerd log an error per scrape.
	var filters []string
	for _, t := range list.Tasks {
		if _, ours := labels[t.ID]; ours && t.Status == task.Status_RUNNING {
			filters = append(filters, "id=="+t.ID) // several filters match any
		}
	}
	if len(filters) == 0 {
		return nil, nil
	}
	resp, err := r.client.TaskService().Metrics(ctx, &tasks.MetricsRequest{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("container stats: task metrics: %w", err)
	}
	out := make([]runtime.ContainerStats, 0, len(resp.Metrics))
	for _, m := range resp.Metrics {
		l := labels[m.ID]
		s := runtime.ContainerStats{
			Pod:       runtime.PodRef{UID: types.UID(l[LabelPodUID]), Namespace: l[LabelPodNamespace], Name: l[LabelPodName]},
			Name:      l[LabelContainerName],
			ID:        m.ID,
			Image:     l[LabelImageRef],
			StartedAt: parseTime(l[LabelStartedAt]),
			Timestamp: time.Now(),
		}
		if m.Timestamp != nil {
			s.Timestamp = m.Timestamp.AsTime()
		}
		if m.Data == nil {
			continue
		}
		v, err := typeurl.UnmarshalAny(m.Data)
		if err != nil {
			return nil, fmt.Errorf("container stats: decode metrics of container %q (%s): %w", m.ID, m.Data.GetTypeUrl(), err)
		}
		switch v := v.(type) {
		case *cg1stats.Metrics:
			fillV1(&s, v)
		case *cg2stats.Metrics:
			fillV2(&s, v)
		default:
			return nil, fmt.Errorf("container stats: metrics of container %q are %T, neither cgroup v1 nor v2", m.ID, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// fillV1 reads cgroup v1 figures as cAdvisor does (container/libcontainer
// handler.go setMemoryStats): working set is usage minus
// total_inactive_file, RSS is total_rss.
func fillV1(s *runtime.ContainerStats, m *cg1stats.Metrics) {
	if u := m.GetCPU().GetUsage(); u != nil {
		s.CPUUsageNanoseconds = u.Total
	}
	if mem := m.GetMemory(); mem != nil {
		s.MemoryUsageBytes = mem.GetUsage().GetUsage()
		s.MemoryRSSBytes = mem.TotalRSS
		s.MemoryWorkingSetBytes = workingSet(s.MemoryUsageBytes, mem.TotalInactiveFile)
	}
	s.OOMEvents = m.GetMemoryOomControl().GetOomKill()
}

// fillV2 reads cgroup v2 figures as cAdvisor does: working set is usage
// minus inactive_file, RSS is anon, OOM events are memory.events oom_kill.
func fillV2(s *runtime.ContainerStats, m *cg2stats.Metrics) {
	if cpu := m.GetCPU(); cpu != nil {
		s.CPUUsageNanoseconds = cpu.UsageUsec * 1000
	}
	if mem := m.GetMemory(); mem != nil {
		s.MemoryUsageBytes = mem.Usage
		s.MemoryRSSBytes = mem.Anon
		s.MemoryWorkingSetBytes = workingSet(mem.Usage, mem.InactiveFile)
	}
	s.OOMEvents = m.GetMemoryEvents().GetOomKill()
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if usage < inactiveFile {
		return 0
	}
	return usage - inactiveFile
}
