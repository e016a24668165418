package manifest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDefaults(t *testing.T) {
	s := Decode("full.yaml", readTestdata(t, "defaults-pod.yaml"), testOpts)
	if len(s.Pods) != 1 {
		t.Fatalf("want one pod, got %+v", summarize(s))
	}
	got := s.Pods[0]
	q := resource.MustParse
	mode := int32(0o644)
	probeDefaults := func(h corev1.ProbeHandler, period int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, TimeoutSeconds: 1, PeriodSeconds: period, SuccessThreshold: 1, FailureThreshold: 3}
	}
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "full",
			Namespace: "default",
			UID:       got.UID,
			Annotations: map[string]string{
				"kubernetes.io/config.source": "file",
				"kubernetes.io/config.hash":   string(got.UID),
			},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{
				Name: "init", Image: "busybox:1.36",
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": q("100m")},
					Requests: corev1.ResourceList{"cpu": q("100m")},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			}},
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "nginx",
				Ports: []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}},
				Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{"cpu": q("500m"), "memory": q("64Mi")},
					Requests: corev1.ResourceList{"cpu": q("250m"), "memory": q("64Mi")},
				},
				LivenessProbe: probeDefaults(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}}, 10),
				ReadinessProbe: probeDefaults(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, 5),
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
					Path: "/quit", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "sec", MountPath: "/etc/sec"},
					{Name: "scratch", MountPath: "/tmp"}, {Name: "host", MountPath: "/host"},
					{Name: "nothing", MountPath: "/nothing"}, {Name: "info", MountPath: "/info"},
				},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullAlways,
			}, {
				Name:                     "sidecar",
				Image:                    "registry.local:5000/tools/sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy:          corev1.PullIfNotPresent,
			}},
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, DefaultMode: &mode}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "token", DefaultMode: &mode}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log", Type: ptrTo(corev1.HostPathUnset)}}},
				{Name: "nothing", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
					Items:       []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}}},
					DefaultMode: &mode}}},
			},
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptrTo(int64(30)),
			DNSPolicy:                     corev1.DNSClusterFirst,
			NodeName:                      "board-1",
			SecurityContext:               &corev1.PodSecurityContext{},
			SchedulerName:                 "default-scheduler",
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
			Priority:                      ptrTo(int32(0)),
			EnableServiceLinks:            ptrTo(true),
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaulted pod mismatch (-want +got):\n%s", diff)
	}
}

func TestPullPolicyDefault(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.29", corev1.PullIfNotPresent},
		{"docker.io/library/nginx", corev1.PullAlways},
		{"localhost:5000/app", corev1.PullAlways},
		{"localhost:5000/app:v2", corev1.PullIfNotPresent},
		{"localhost:5000/app:latest", corev1.PullAlways},
		{"app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"app:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullAlways},
		{"app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
	}
	for _, tt := range tests {
		if got := defaultPullPolicy(tt.image); got != tt.want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

func TestPodDefaultsSmallRules(t *testing.T) {
	tests := []struct {
		name  string
		extra string // appended to a pod's first container, or to its spec ("  " indent)
		check func(*corev1.Pod) any
		want  any
	}{
		{"explicit values are kept", "  restartPolicy: Never\n  dnsPolicy: Default\n  terminationGracePeriodSeconds: 5\n  enableServiceLinks: false\n",
			func(p *corev1.Pod) any {
				return []any{p.Spec.RestartPolicy, p.Spec.DNSPolicy, *p.Spec.TerminationGracePeriodSeconds, *p.Spec.EnableServiceLinks}
			},
			[]any{corev1.RestartPolicyNever, corev1.DNSDefault, int64(5), false}},
		{"hostNetwork defaults hostPort to containerPort", "    ports: [{containerPort: 8080}]\n  hostNetwork: true\n",
			func(p *corev1.Pod) any { return p.Spec.Containers[0].Ports[0].HostPort }, int32(8080)},
		{"explicit pull policy kept", "    imagePullPolicy: Never\n",
			func(p *corev1.Pod) any { return p.Spec.Containers[0].ImagePullPolicy }, corev1.PullNever},
		{"quantities rounded up to milli", "    resources: {limits: {cpu: 0.0001}}\n",
			func(p *corev1.Pod) any { return p.Spec.Containers[0].Resources.Limits.Cpu().String() }, "1m"},
		{"grpc probe service defaults to empty", "    livenessProbe: {grpc: {port: 2379}}\n",
			func(p *corev1.Pod) any { return p.Spec.Containers[0].LivenessProbe.GRPC.Service }, ptrTo("")},
		{"projected volume defaults", "  volumes:\n  - name: p\n    projected:\n      sources:\n      - serviceAccountToken: {path: token}\n",
			func(p *corev1.Pod) any {
				v := p.Spec.Volumes[0].Projected
				return []any{*v.DefaultMode, *v.Sources[0].ServiceAccountToken.ExpirationSeconds}
			}, []any{int32(0o644), int64(3600)}},
		{"service account fields stay empty", "",
			func(p *corev1.Pod) any {
				return []any{p.Spec.ServiceAccountName, p.Spec.DeprecatedServiceAccount, p.Spec.AutomountServiceAccountToken}
			},
			[]any{"", "", (*bool)(nil)}},
		{"pod-level requests default from pod-level limits", "  resources: {limits: {cpu: \"1\", memory: 128Mi}}\n",
			func(p *corev1.Pod) any {
				return []string{p.Spec.Resources.Requests.Cpu().String(), p.Spec.Resources.Requests.Memory().String()}
			},
			[]string{"1", "128Mi"}},
		{"pod-level requests default from container requests", "    resources: {requests: {cpu: 200m}}\n  resources: {limits: {cpu: \"1\"}}\n",
			func(p *corev1.Pod) any { return p.Spec.Resources.Requests.Cpu().String() }, "200m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Decode("p.yaml", []byte(podYAML("p", "busybox:1.36")+tt.extra), testOpts)
			if len(s.Pods) != 1 {
				t.Fatalf("want one pod, got %+v", summarize(s))
			}
			if diff := cmp.Diff(tt.want, tt.check(s.Pods[0])); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSystemFieldsDropped(t *testing.T) {
	doc := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  uid: \"1234\"\n  resourceVersion: \"7\"\n  creationTimestamp: \"2020-01-01T00:00:00Z\"\n  generation: 3\n" +
		"spec:\n  containers: [{name: main, image: busybox}]\n"
	s := Decode("p.yaml", []byte(doc), testOpts)
	if len(s.Pods) != 1 {
		t.Fatalf("want one pod, got %+v", summarize(s))
	}
	p := s.Pods[0]
	got := []any{p.UID == "1234", p.ResourceVersion, p.CreationTimestamp.IsZero(), p.Generation}
	if diff := cmp.Diff([]any{false, "", true, int64(0)}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	plain := Decode("p.yaml", []byte(podYAML("p", "busybox")), testOpts)
	if plain.Pods[0].UID != p.UID {
		t.Errorf("system fields changed the UID: %s vs %s", p.UID, plain.Pods[0].UID)
	}
}

func TestOtherKindDefaults(t *testing.T) {
	s := Decode("x.yaml", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, namespace: ignored}\n---\n"+
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"), testOpts)
	if len(s.Namespaces) != 1 || len(s.ConfigMaps) != 1 || len(s.Secrets) != 1 {
		t.Fatalf("got %+v", summarize(s))
	}
	ns := s.Namespaces[0]
	got := []any{ns.Namespace, ns.Labels, ns.Spec.Finalizers, ns.Status.Phase,
		s.ConfigMaps[0].Namespace, s.ConfigMaps[0].Data, s.Secrets[0].Namespace, s.Secrets[0].Type}
	want := []any{"", map[string]string{"kubernetes.io/metadata.name": "prod"}, []corev1.FinalizerName{"kubernetes"}, corev1.NamespaceActive,
		"default", map[string]string{}, "default", corev1.SecretTypeOpaque}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
