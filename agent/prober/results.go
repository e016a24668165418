package prober

import "strings"

// Result is kubelet's results.Result: the state a probe's worker keeps
// for a container.
type Result int

const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "UNKNOWN"
	}
}

// Type is a probe's type as kubelet names it in events and metrics.
type Type string

const (
	Liveness  Type = "Liveness"
	Readiness Type = "Readiness"
	Startup   Type = "Startup"
)

// results is kubelet's results.Manager for one probe type: the last result
// by runtime container ID. It is guarded by the Manager's lock.
type results map[string]Result

// set records r for id and reports whether it changed (a new entry counts
// as a change, as kubelet's setInternal has it).
func (rs results) set(id string, r Result) bool {
	prev, ok := rs[id]
	if ok && prev == r {
		return false
	}
	rs[id] = r
	return true
}

// RuntimeID returns a status's containerID ("containerd://abc") as the
// runtime names the container ("abc"), as kubelet's ParseContainerID
// splits "<type>://<id>". An ID without a type is returned as it is.
func RuntimeID(containerID string) string {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		return id
	}
	return containerID
}
