// Package nodetest holds the whole-node tests: each one boots a devnode
// (bin/devnode: a private containerd + runc and the real podagent binary,
// with a flash and a state directory of its own), or builds podagent and
// runs it as a board's PID 1 would, and drives it from outside the way a
// person does: with kubectl and the HTTP API, reading pods, events, logs,
// cgroups and network namespaces back from the host.
//
// The package has no code besides this file; its tests need root and the
// binaries of `make build`, and skip (or fail under PODBOOT_INTEGRATION=1)
// without them. Tests of podagent's own unexported code stay in
// agent/podagent.
//
//	make build && sudo PODBOOT_INTEGRATION=1 go test -run TestIntegrationPodLifecycle ./agent/nodetest
package nodetest
