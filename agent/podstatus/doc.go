// Package podstatus computes a pod's status from its spec and what the
// runtime shows, the way kubelet's generateAPIPodStatus does for a static
// pod: phase (getPhase), the kubelet-owned conditions (status/generate.go),
// init and app container statuses (convertToAPIContainerStatuses, with the
// reason cache's waiting reasons), QoS class, start time and IPs.
//
// Compute is pure: the caller passes the previous status (to keep
// condition transition times and carry over what the runtime has
// forgotten) and the time.
package podstatus
