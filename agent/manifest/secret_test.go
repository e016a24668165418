package manifest

import (
	"strings"
	"testing"
)

// TestSecretValuesNotInErrors: a rejected Secret's error, which becomes a
// log line and a FailedManifest event, never carries its values.
func TestSecretValuesNotInErrors(t *testing.T) {
	tests := []struct{ name, doc, value string }{
		{"bad base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: 'hunter2!!'}\n", "hunter2!!"},
		{"not a string", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: [topsecret]}\n", "topsecret"},
	}
	for _, tt := range tests {
		s := Decode("s.yaml", []byte(tt.doc), testOpts)
		if len(s.Errors) != 1 {
			t.Fatalf("%s: want one error, got %+v", tt.name, summarize(s))
		}
		if msg := s.Errors[0].Error(); strings.Contains(msg, tt.value) {
			t.Errorf("%s: error shows the secret's value: %s", tt.name, msg)
		}
		if s.Errors[0].Field == "" {
			t.Errorf("%s: error names no field: %s", tt.name, s.Errors[0].Error())
		}
	}
}
