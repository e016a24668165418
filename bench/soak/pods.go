package soak

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Kind is what a soak pod does.
type Kind string

const (
	// Steady pods run for the whole soak.
	Steady Kind = "steady"
	// Probed pods are steady pods with an exec readiness probe every 10 s:
	// once probes run (issue 14; today the agent accepts and ignores
	// them), each probe is a runc exec, a goroutine and a few fds in the
	// agent.
	Probed Kind = "probed"
	// CrashLoop pods exit 1 a second after they start: restarts with
	// kubelet's backoff, a new container, log file and cgroup each time.
	CrashLoop Kind = "crashloop"
	// Replaced pods have their manifest edited every EditEvery: each edit
	// is a new pod (a new UID: new sandbox, veth, cgroups, log directory)
	// and the old one's removal.
	Replaced Kind = "replaced"
	// Logger pods write about 1 MB of log a minute.
	Logger Kind = "logger"
)

// Mix is how many pods of each kind run.
type Mix struct {
	Steady, Probed, CrashLoop, Replaced, Logger int
}

// DefaultMix is the 20 pods.
func DefaultMix() Mix { return Mix{Steady: 6, Probed: 2, CrashLoop: 4, Replaced: 4, Logger: 4} }

// Total is the number of pods.
func (m Mix) Total() int { return m.Steady + m.Probed + m.CrashLoop + m.Replaced + m.Logger }

// PodSpec is one pod of the mix.
type PodSpec struct {
	Name string
	Kind Kind
}

// Pods lists the mix's pods in a fixed order.
func (m Mix) Pods() []PodSpec {
	var out []PodSpec
	for _, k := range []struct {
		kind Kind
		n    int
	}{{Steady, m.Steady}, {Probed, m.Probed}, {CrashLoop, m.CrashLoop}, {Replaced, m.Replaced}, {Logger, m.Logger}} {
		for i := range k.n {
			out = append(out, PodSpec{Name: fmt.Sprintf("soak-%s-%02d", k.kind, i), Kind: k.kind})
		}
	}
	return out
}

// Image is the image every soak pod runs (built by bin/mkimage).
const Image = "busybox:1.36"

// The scripts the pods run under sh -c. A shell as PID 1 ignores SIGTERM
// unless it traps it, and every replacement would wait out the grace
// period; these exit on it.
const (
	// sleepForever waits in the shell's wait builtin, which SIGTERM
	// interrupts, so the trap runs at once.
	sleepForever = `trap 'exit 0' TERM; sleep 86400 & wait`
	crash        = `echo "starting, and crashing in a second"; sleep 1; echo "crashing"; exit 1`
	// logMBPerMinute writes 273 lines of 64 bytes a second (1.05 MB, or
	// 1 MiB, a minute): yes and head are busybox applets, so two short
	// processes a second, and a sleep.
	logMBPerMinute = `trap 'exit 0' TERM; line='podboot soak: a log line of sixty-four bytes, newline included.'; ` +
		`while true; do yes "$line" | head -n 273; sleep 1 & wait; done`
)

// Manifest renders the pod at generation gen (only Replaced pods change
// with it: the generation is in an annotation and an environment
// variable, so the edit changes the pod's spec, as a real edit would).
func (p PodSpec) Manifest(gen int) ([]byte, error) {
	c := corev1.Container{
		Name:            "main",
		Image:           Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", sleepForever},
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Labels: map[string]string{"app": "soak", "soak/kind": string(p.Kind)}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: new(int64(2)),
		},
	}
	switch p.Kind {
	case Probed:
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}},
			PeriodSeconds: 10,
		}
	case CrashLoop:
		c.Command = []string{"sh", "-c", crash}
	case Replaced:
		pod.Annotations = map[string]string{"soak/generation": strconv.Itoa(gen)}
		c.Env = []corev1.EnvVar{{Name: "SOAK_GENERATION", Value: strconv.Itoa(gen)}}
	case Logger:
		c.Command = []string{"sh", "-c", logMBPerMinute}
	}
	pod.Spec.Containers = []corev1.Container{c}
	data, err := yaml.Marshal(&pod)
	if err != nil {
		return nil, fmt.Errorf("render manifest of pod %s: %w", p.Name, err)
	}
	return data, nil
}
