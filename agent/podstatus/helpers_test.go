package podstatus

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podboot/podboot/agent/runtime"
)

var (
	t0  = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ref = runtime.PodRef{UID: "uid-1", Namespace: "default", Name: "web"}
	img = runtime.Image{Ref: "docker.io/library/busybox:1.36", ID: "docker.io/library/busybox@sha256:aaaa"}
)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func mt(s int) metav1.Time { return metav1.NewTime(at(s)) }

type podOpt func(*corev1.Pod)

func newPod(policy corev1.RestartPolicy, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ref.Namespace, UID: ref.UID},
		Spec: corev1.PodSpec{
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "app", Image: "busybox:1.36"}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func withContainers(names ...string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers = nil
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "busybox:1.36"})
		}
	}
}

func withInit(names ...string) podOpt {
	return func(p *corev1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: n, Image: "busybox:1.36"})
		}
	}
}

func withResources(req, lim string) podOpt {
	return func(p *corev1.Pod) {
		r := corev1.ResourceRequirements{}
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse("64Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse("64Mi")}
		}
		p.Spec.Containers[0].Resources = r
	}
}

// running is an instance started at start (seconds after t0).
func running(name string, attempt int32, start int) runtime.ContainerStatus {
	return runtime.ContainerStatus{
		ID: name + "-" + string(rune('a'+attempt)), Pod: ref, Name: name, Attempt: attempt,
		State: runtime.ContainerRunning, CreatedAt: at(start), StartedAt: at(start), Image: img,
	}
}

func exited(name string, attempt int32, start, end int, code int32) runtime.ContainerStatus {
	c := running(name, attempt, start)
	c.State, c.FinishedAt, c.ExitCode = runtime.ContainerExited, at(end), code
	return c
}

func initC(c runtime.ContainerStatus) runtime.ContainerStatus {
	c.Init = true
	return c
}

var sandbox = &runtime.Sandbox{Pod: ref, Hostname: "web", IP: "10.88.0.5", CreatedAt: at(0)}
