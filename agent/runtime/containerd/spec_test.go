package containerd

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

func TestProcessArgs(t *testing.T) {
	entrypoint := []string{"/entry"}
	env := []corev1.EnvVar{{Name: "A", Value: "a"}, {Name: "B", Value: "$(A)-b"}}
	tests := []struct {
		name    string
		command []string
		args    []string
		want    []string
	}{
		{name: "neither: the image's own", want: nil},
		{name: "command drops ENTRYPOINT and CMD", command: []string{"/bin/cmd", "$(B)"}, want: []string{"/bin/cmd", "a-b"}},
		{name: "args keep ENTRYPOINT, replace CMD", args: []string{"$(A)", "$$(A)"}, want: []string{"/entry", "a", "$(A)"}},
		{name: "both", command: []string{"sh"}, args: []string{"-c", "echo $(UNDEFINED)"}, want: []string{"sh", "-c", "echo $(UNDEFINED)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, lookup := containerEnv(corev1.Container{Env: env})
			got := processArgs(corev1.Container{Command: tt.command, Args: tt.args}, entrypoint, lookup)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("processArgs() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerEnv(t *testing.T) {
	got, _ := containerEnv(corev1.Container{Env: []corev1.EnvVar{
		{Name: "LATER", Value: "$(FIRST)"}, // defined after: not expanded
		{Name: "FIRST", Value: "1"},
		{Name: "SECOND", Value: "$(FIRST)2$$"},
		{Name: "FIRST", Value: "override $(FIRST)"},
	}})
	want := []string{"LATER=$(FIRST)", "FIRST=1", "SECOND=12$", "FIRST=override 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("containerEnv() (-want +got):\n%s", diff)
	}
}

func TestEffectiveUser(t *testing.T) {
	p := func(v int64) *int64 { return &v }
	tests := []struct {
		name     string
		pod      *corev1.PodSecurityContext
		ctr      *corev1.SecurityContext
		uid, gid *int64
	}{
		{name: "none"},
		{name: "pod", pod: &corev1.PodSecurityContext{RunAsUser: p(1), RunAsGroup: p(2)}, uid: p(1), gid: p(2)},
		{name: "container over pod", pod: &corev1.PodSecurityContext{RunAsUser: p(1), RunAsGroup: p(2)}, ctr: &corev1.SecurityContext{RunAsUser: p(3)}, uid: p(3), gid: p(2)},
		{name: "container only", ctr: &corev1.SecurityContext{RunAsGroup: p(4)}, gid: p(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uid, gid := effectiveUser(runtime.ContainerConfig{PodSecurityContext: tt.pod, Spec: corev1.Container{SecurityContext: tt.ctr}})
			if diff := cmp.Diff([]*int64{tt.uid, tt.gid}, []*int64{uid, gid}); diff != "" {
				t.Errorf("effectiveUser() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCapNames(t *testing.T) {
	got := capNames([]corev1.Capability{"NET_ADMIN", "CAP_SYS_TIME", "all", "chown"})
	want := []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "ALL", "CAP_CHOWN"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("capNames() (-want +got):\n%s", diff)
	}
}

func TestValidUID(t *testing.T) {
	for _, uid := range []string{"", ".", "..", "a/b", "x\x00"} {
		if validUID(uid) == nil {
			t.Errorf("validUID(%q) = nil, want an error", uid)
		}
	}
	if err := validUID("0f1e2d3c-uid"); err != nil {
		t.Errorf("validUID(uuid) = %v", err)
	}
}

func TestNormalizeImage(t *testing.T) {
	tests := map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.36":                   "docker.io/library/busybox:1.36",
		"registry.k8s.io/busybox:1.27.2": "registry.k8s.io/busybox:1.27.2",
		"127.0.0.1:5000/app":             "127.0.0.1:5000/app:latest",
		"user/app@sha256:" + sha:         "docker.io/user/app@sha256:" + sha,
	}
	for in, want := range tests {
		got, err := NormalizeImage(in)
		if err != nil || got.String() != want {
			t.Errorf("NormalizeImage(%q) = %v, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "Busybox", "a:b:c", "-x"} {
		if _, err := NormalizeImage(bad); err == nil {
			t.Errorf("NormalizeImage(%q) succeeded, want an error", bad)
		}
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
