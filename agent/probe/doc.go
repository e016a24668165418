// Package probe runs one container probe of any kind (exec, httpGet,
// tcpSocket, grpc) as kubelet's pkg/probe and pkg/kubelet/prober's runProbe
// do, with kubelet's results and messages: the output a probe returns is
// what kubelet writes after "Liveness probe failed: " in the Unhealthy
// event. It also builds the HTTP requests that lifecycle hooks send.
//
// The package keeps no state between probes: every HTTP probe gets its
// own transport without keep-alive and every connection is closed before
// Probe returns, so a probe leaves no goroutine or fd behind.
package probe
