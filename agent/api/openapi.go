package api

import "net/http"

// routeOpenAPI serves /openapi/v2 and /openapi/v3; it reports whether path
// was one of them. Placeholder until the documents land (issue 12).
func (s *server) routeOpenAPI(w http.ResponseWriter, r *http.Request, path string) bool {
	return false
}
