package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// document is one YAML or JSON document of a file, converted to JSON.
type document struct {
	index int
	json  []byte // nil when err is set
	yaml  []byte // the YAML source, nil for JSON documents
	err   error  // syntax error: the document is not YAML/JSON at all

	// Where the document is in the file's bytes, for rewrites: start and
	// end bound its text (a YAML document's lines between separators, a
	// JSON value); cutStart and cutEnd are what removing it takes out
	// (with one separator line, or the whitespace after a JSON value), so
	// that the documents around it are left byte for byte.
	start, end       int
	cutStart, cutEnd int
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
	bom := 0
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) { // UTF-8 BOM
		bom = 3
	}
	isJSONFile := strings.EqualFold(filepath.Ext(file), ".json")
	if t := bytes.TrimSpace(data[bom:]); len(t) > 0 && t[0] == '{' {
		docs, firstFailed := splitJSON(data, bom)
		if !firstFailed || isJSONFile {
			return docs
		}
	}
	return splitYAML(data, bom)
}

// splitJSON reads concatenated JSON values from data[from:]. firstFailed
// reports that the very first value was not JSON.
func splitJSON(data []byte, from int) (docs []document, firstFailed bool) {
	dec := json.NewDecoder(bytes.NewReader(data[from:]))
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
		end := from + int(dec.InputOffset())
		start := end - len(raw) // RawMessage is the value's exact bytes
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			i--
			continue
		}
		cutEnd := end
		for cutEnd < len(data) && isJSONSpace(data[cutEnd]) {
			cutEnd++
		}
		docs = append(docs, document{index: i, json: raw, start: start, end: end, cutStart: start, cutEnd: cutEnd})
	}
}

func isJSONSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// chunk is the text between two "---" separator lines of a YAML stream.
type chunk struct {
	start, end int // the chunk's lines
	sepBefore  int // start of the separator line before it, -1 if none
	sepAfter   int // end of the separator line after it, -1 if none
}

// yamlChunks cuts data[from:] at its document separators exactly as
// apimachinery's YAMLReader does (a line starting with "---" followed by
// nothing but spaces or a comment; anything else after "---" is an error),
// keeping where each chunk is. Separator lines belong to no chunk.
func yamlChunks(data []byte, from int) ([]chunk, error) {
	var chunks []chunk
	cur := chunk{start: from, sepBefore: -1, sepAfter: -1}
	for pos := from; pos < len(data); {
		lineEnd := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			lineEnd = pos + i + 1
		}
		line := data[pos:lineEnd]
		if rest, ok := bytes.CutPrefix(line, []byte("---")); ok {
			trimmed := bytes.TrimSpace(rest)
			if len(trimmed) > 0 && trimmed[0] != '#' {
				return chunks, fmt.Errorf("invalid Yaml document separator: %s", trimmed)
			}
			cur.end, cur.sepAfter = pos, lineEnd
			chunks = append(chunks, cur)
			cur = chunk{start: lineEnd, sepBefore: pos, sepAfter: -1}
		}
		pos = lineEnd
	}
	cur.end = len(data)
	return append(chunks, cur), nil
}

// splitYAML reads a multi-document YAML stream ("---" separators).
func splitYAML(data []byte, from int) []document {
	chunks, serr := yamlChunks(data, from)
	var docs []document
	for _, c := range chunks {
		// YAMLReader reads lines with bufio's ReadLine, which turns "\r\n"
		// into "\n": parse what it would have handed over.
		src := bytes.ReplaceAll(data[c.start:c.end], []byte("\r\n"), []byte("\n"))
		if len(src) == 0 {
			continue // YAMLReader never returns an empty document
		}
		d := document{index: len(docs), yaml: src, start: c.start, end: c.end, cutStart: c.start, cutEnd: c.end}
		switch {
		case c.sepBefore >= 0:
			d.cutStart = c.sepBefore
		case c.sepAfter >= 0:
			d.cutEnd = c.sepAfter
		}
		j, err := yaml.YAMLToJSON(src)
		if err != nil {
			d.err = fmt.Errorf("invalid YAML: %w", err)
			docs = append(docs, d)
			continue
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			continue // comments only, or an empty document between separators
		}
		d.json = j
		docs = append(docs, d)
	}
	if serr != nil {
		docs = append(docs, document{index: len(docs), err: fmt.Errorf("read YAML: %w", serr)})
	}
	return docs
}
