package api

import (
	"net/http"
)

// streamingSubresources are the pod subresources served by
// serveSubresource.
var streamingSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true}

// Streams runs exec, attach and port-forward in a pod's containers.
// Placeholder until the streaming path lands (issue 12).
type Streams interface{}

// serveSubresource serves pods/{name}/exec, attach and portforward.
// Placeholder until the streaming path lands (issue 12).
func (s *server) serveSubresource(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	writeStatus(w, pathNotFound())
}
