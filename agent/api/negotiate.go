package api

import (
	"mime"
	"strings"
)

// output is what a request asked to get back.
type output int

const (
	outputJSON output = iota
	outputTable
)

type negotiated struct {
	output       output
	tableVersion string // "v1" or "v1beta1" for outputTable
	acceptable   bool
}

// negotiate reads an Accept header as the API server does for the media
// types this API serves: JSON, and JSON as a meta.k8s.io Table.
func negotiate(accept string) negotiated {
	if strings.TrimSpace(accept) == "" {
		return negotiated{output: outputJSON, acceptable: true}
	}
	// The first acceptable media type wins, as in the API server.
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "application/json":
			switch {
			case params["as"] == "Table" && params["g"] == "meta.k8s.io" && (params["v"] == "v1" || params["v"] == "v1beta1"):
				return negotiated{output: outputTable, tableVersion: params["v"], acceptable: true}
			case params["as"] == "":
				return negotiated{output: outputJSON, acceptable: true}
			}
		case "*/*", "application/*":
			return negotiated{output: outputJSON, acceptable: true}
		}
	}
	return negotiated{}
}
