// Package backoff is kubelet's per-key exponential backoff, as used for
// CrashLoopBackOff and ImagePullBackOff: 10 s doubling to a 5 min cap, an
// entry forgotten once the event that would consult it comes more than
// 10 min after its last update (for a crash loop: the container ran cleanly
// for 10 min).
//
// It reproduces k8s.io/client-go/util/flowcontrol.Backoff without jitter and
// without a clock: every method takes the times it needs, so callers decide
// what "now" is and tests use explicit times. The state can be exported and
// restored so an agent restart keeps its backoffs.
package backoff
