package api

import "net/http"

// serveWrite serves POST, PUT, PATCH and DELETE of a resource.
// Placeholder until the write path lands (issue 12).
func (s *server) serveWrite(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	writeStatus(w, writesNotServed(r.Method, req.describe()))
}
