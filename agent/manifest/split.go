package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// document is one YAML or JSON document of a file, converted to JSON.
type document struct {
	index int
	json  []byte // nil when err is set
	yaml  []byte // the YAML source, nil for JSON documents
	err   error  // syntax error: the document is not YAML/JSON at all
}

// splitDocuments cuts a file into documents. Documents that hold nothing
// (only comments or whitespace) are dropped and not counted.
//
// A file whose first non-blank byte is '{' is read as a stream of JSON
// values first (one object, or several concatenated); if that fails on the
// first value it is read as YAML instead, because flow-style YAML such as
// `{apiVersion: "v1", kind: "Pod", ...}` with comments and unquoted keys
// also starts with '{'. A .json file is never re-read as YAML, so its
// syntax errors are reported as JSON errors.
func splitDocuments(file string, data []byte) []document {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	isJSONFile := strings.EqualFold(filepath.Ext(file), ".json")
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		docs, firstFailed := splitJSON(data)
		if !firstFailed || isJSONFile {
			return docs
		}
	}
	return splitYAML(data)
}

// splitJSON reads concatenated JSON values. firstFailed reports that the
// very first value was not JSON.
func splitJSON(data []byte) (docs []document, firstFailed bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, false
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				err = fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
			} else {
				err = fmt.Errorf("invalid JSON: %w", err)
			}
			return append(docs, document{index: i, err: err}), i == 0
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			i--
			continue
		}
		docs = append(docs, document{index: i, json: raw})
	}
}

// splitYAML reads a multi-document YAML stream ("---" separators).
func splitYAML(data []byte) []document {
	var docs []document
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		src, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			return append(docs, document{index: len(docs), err: fmt.Errorf("read YAML: %w", err)})
		}
		j, err := yaml.YAMLToJSON(src)
		if err != nil {
			docs = append(docs, document{index: len(docs), yaml: src, err: fmt.Errorf("invalid YAML: %w", err)})
			continue
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue // comments only, or an empty document between separators
		}
		docs = append(docs, document{index: len(docs), json: j, yaml: src})
	}
}
