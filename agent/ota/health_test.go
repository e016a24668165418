package ota

import (
	"testing"
	"time"
)

func TestGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	up := PodHealth{Namespace: "default", Name: "web", Present: true, Ready: true}
	job := PodHealth{Namespace: "default", Name: "job", Present: true, Succeeded: true}
	pending := PodHealth{Namespace: "default", Name: "web", Present: true, Reason: "ContainerCreating"}
	absent := PodHealth{Namespace: "default", Name: "web"}
	restarted := up
	restarted.Restarts = 1
	failed := PodHealth{Namespace: "default", Name: "job", Present: true, Failed: true, Reason: "Error"}

	type look struct {
		at   time.Duration
		pods []PodHealth
		want verdict
		why  string
	}
	for _, tc := range []struct {
		name  string
		looks []look
	}{
		{"ready then stable", []look{
			{0, []PodHealth{pending}, waiting, ""},
			{5 * time.Second, []PodHealth{up, job}, waiting, ""},
			{14 * time.Second, []PodHealth{up, job}, waiting, ""},
			{15 * time.Second, []PodHealth{up, job}, healthy, ""},
		}},
		{"no pods is healthy after stableFor", []look{
			{0, nil, waiting, ""},
			{10 * time.Second, nil, healthy, ""},
		}},
		{"never ready", []look{
			{59 * time.Second, []PodHealth{pending}, waiting, ""},
			{60 * time.Second, []PodHealth{pending}, unhealthy, "not every pod was Ready within 1m0s: default/web (ContainerCreating)"},
		}},
		{"absent pod counts as not ready", []look{
			{60 * time.Second, []PodHealth{absent}, unhealthy, "not every pod was Ready within 1m0s: default/web"},
		}},
		{"restart after ready", []look{
			{1 * time.Second, []PodHealth{up}, waiting, ""},
			{2 * time.Second, []PodHealth{restarted}, unhealthy, "pod default/web restarted a container (restarts 0 → 1) after the generation was Ready"},
		}},
		{"restarts before ready are the baseline", []look{
			{1 * time.Second, []PodHealth{pending}, waiting, ""},
			{2 * time.Second, []PodHealth{restarted}, waiting, ""},
			{12 * time.Second, []PodHealth{restarted}, healthy, ""},
		}},
		{"unready during stableFor restarts the window", []look{
			{0, []PodHealth{up}, waiting, ""},
			{5 * time.Second, []PodHealth{pending}, waiting, ""},
			{6 * time.Second, []PodHealth{up}, waiting, ""},
			{15 * time.Second, []PodHealth{up}, waiting, ""},
			{16 * time.Second, []PodHealth{up}, healthy, ""},
		}},
		{"a container exits after ready", []look{
			{0, []PodHealth{up}, waiting, ""},
			{1 * time.Second, []PodHealth{{Namespace: "default", Name: "web", Present: true, Ready: true, Exited: "container app exited (Error, exit code 1)"}}, unhealthy,
				"pod default/web: container app exited (Error, exit code 1) after the generation was Ready"},
		}},
		{"an exited container is not healthy, even with a stale Ready", []look{
			{0, []PodHealth{{Namespace: "default", Name: "web", Present: true, Ready: true, Exited: "container app exited"}}, waiting, ""},
			{60 * time.Second, []PodHealth{{Namespace: "default", Name: "web", Present: true, Ready: true, Exited: "container app exited", Reason: "CrashLoopBackOff"}}, unhealthy,
				"not every pod was Ready within 1m0s: default/web (CrashLoopBackOff)"},
		}},
		{"failed pod", []look{
			{0, []PodHealth{up, failed}, unhealthy, "pod default/job failed (Error)"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(t0, time.Minute, 10*time.Second)
			for _, l := range tc.looks {
				got, why := g.observe(t0.Add(l.at), l.pods)
				if got != l.want || why != l.why {
					t.Fatalf("at %s: %v %q, want %v %q", l.at, got, why, l.want, l.why)
				}
			}
		})
	}
}
