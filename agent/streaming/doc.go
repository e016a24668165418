// Package streaming serves the streaming subresources of a pod, exec,
// attach and port-forward, on the wire protocols kubectl speaks:
//
//   - exec and attach: WebSocket with the v5.channel.k8s.io subprotocol
//     (kubectl 1.30+ tries it first; v5 adds the CLOSE signal that ends
//     stdin), then SPDY/3.1 with v4..v1.channel.k8s.io, and WebSocket
//     v4..v1, for older clients (kubelet's own server,
//     k8s.io/cri-streaming);
//   - port-forward: WebSocket tunnelling of SPDY (subprotocol
//     "SPDY/3.1+portforward.k8s.io", kubectl 1.31+ tries it first), then
//     plain SPDY/3.1 with portforward.k8s.io, and WebSocket v4.
//
// The package knows nothing of containers: the API hands it the request
// and a function that runs the session (agent/runtime's Streamer behind
// it). A session's context ends when its connection does, so a client
// that goes away ends the process or the forwarded connection.
//
// websocket.go and tunnel.go port small parts of k8s.io/apiserver
// v0.37.2 (pkg/util/proxy/websocket.go and streamtunnel.go) and
// k8s.io/client-go v0.37.2 (tools/portforward/tunneling_connection.go),
// Copyright The Kubernetes Authors, under the Apache License 2.0
// (http://www.apache.org/licenses/LICENSE-2.0); the changes are marked
// where they are made.
package streaming
