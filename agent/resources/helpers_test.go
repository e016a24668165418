package resources

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// list builds a ResourceList from name, quantity pairs: list("cpu", "100m").
func list(kv ...string) corev1.ResourceList {
	if len(kv) == 0 {
		return nil
	}
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func ctr(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func sidecar(name string, requests, limits corev1.ResourceList) corev1.Container {
	c := ctr(name, requests, limits)
	always := corev1.ContainerRestartPolicyAlways
	c.RestartPolicy = &always
	return c
}

func pod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{Containers: containers}}
}

func withInit(p *corev1.Pod, inits ...corev1.Container) *corev1.Pod {
	p.Spec.InitContainers = inits
	return p
}

func withPodLevel(p *corev1.Pod, requests, limits corev1.ResourceList) *corev1.Pod {
	p.Spec.Resources = &corev1.ResourceRequirements{Requests: requests, Limits: limits}
	return p
}

func withOverhead(p *corev1.Pod, overhead corev1.ResourceList) *corev1.Pod {
	p.Spec.Overhead = overhead
	return p
}

// canonical maps each quantity to its canonical string so that 1000m and 1
// compare equal in cmp.Diff.
func canonical(l corev1.ResourceList) map[corev1.ResourceName]string {
	m := map[corev1.ResourceName]string{}
	for name, q := range l {
		m[name] = q.String()
	}
	return m
}
