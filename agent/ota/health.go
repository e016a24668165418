package ota

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// PodHealth is what the health gate needs of one pod of the generation
// on trial, as the pod's status shows it.
type PodHealth struct {
	Namespace, Name string
	// Present is false while the pod has no status yet (not started).
	Present bool
	// Ready is the pod's Ready condition; Succeeded and Failed its phase.
	Ready, Succeeded, Failed bool
	// Restarts is the sum of its containers' restartCount.
	Restarts int32
	// Exited says which container stopped in a way the pod does not
	// expect (any stop under restartPolicy Always, a failure under
	// OnFailure, a crash loop's back-off), "" when none did: after the
	// generation was healthy that fails it at once, before the restart
	// the back-off delays would show in Restarts.
	Exited string
	// Reason is why it is not ready, for the rollback's message: a
	// waiting container's reason (CrashLoopBackOff, ErrImagePull), or the
	// phase.
	Reason string
}

func (p PodHealth) key() string { return p.Namespace + "/" + p.Name }

func (p PodHealth) healthy() bool { return p.Present && p.Exited == "" && (p.Ready || p.Succeeded) }

// gate is the health gate of one start of a trial: every pod of the
// generation Ready (or Succeeded) within deadline, then no container
// restart and no pod unready for stable. It counts time from its own
// start (the monotonic clock), never from a wall-clock deadline written
// down before a reboot: a board without an RTC boots with a clock that
// may have moved, and each start of a trial gets the whole window.
type gate struct {
	start            time.Time
	deadline, stable time.Duration

	// healthySince is when every pod was last seen healthy without a
	// break; zero while one is not.
	healthySince time.Time
	// baseline holds each pod's restarts when the generation was first
	// all healthy: a restart after that fails the trial at once.
	baseline map[string]int32
}

func newGate(start time.Time, deadline, stable time.Duration) *gate {
	return &gate{start: start, deadline: deadline, stable: stable}
}

// verdict is the gate's answer for one look at the pods.
type verdict int

const (
	waiting verdict = iota
	healthy
	unhealthy
)

// observe looks at the pods at now; when the answer is unhealthy, the
// reason says why in an operator's words.
func (g *gate) observe(now time.Time, pods []PodHealth) (verdict, string) {
	for _, p := range pods {
		if p.Present && p.Failed {
			return unhealthy, fmt.Sprintf("pod %s failed%s", p.key(), because(p.Reason))
		}
	}
	if g.baseline != nil {
		for _, p := range pods {
			if p.Present && p.Exited != "" {
				return unhealthy, fmt.Sprintf("pod %s: %s after the generation was Ready", p.key(), p.Exited)
			}
		}
		for _, p := range pods {
			if before, ok := g.baseline[p.key()]; ok && p.Restarts > before {
				return unhealthy, fmt.Sprintf("pod %s restarted a container (restarts %d → %d) after the generation was Ready", p.key(), before, p.Restarts)
			}
		}
	}
	var unready []string
	for _, p := range pods {
		if !p.healthy() {
			unready = append(unready, p.key()+because(p.Reason))
		}
	}
	elapsed := now.Sub(g.start)
	if len(unready) > 0 {
		g.healthySince = time.Time{}
		if elapsed >= g.deadline {
			slices.Sort(unready)
			return unhealthy, fmt.Sprintf("not every pod was Ready within %s: %s", g.deadline, strings.Join(unready, ", "))
		}
		return waiting, ""
	}
	if g.baseline == nil {
		g.baseline = make(map[string]int32, len(pods))
		for _, p := range pods {
			g.baseline[p.key()] = p.Restarts
		}
	}
	if g.healthySince.IsZero() {
		g.healthySince = now
	}
	if now.Sub(g.healthySince) >= g.stable {
		return healthy, ""
	}
	return waiting, ""
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}
