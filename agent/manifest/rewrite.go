package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Change is one object's new document, or with a nil Object the removal of
// the document that defines Key.
type Change struct {
	Key    ObjectKey
	Object runtime.Object // *corev1.Pod, ConfigMap, Secret or Namespace; nil removes
}

// ErrBroken is wrapped by editFile when the file does not decode as a
// whole (half-written, not YAML): the API never rewrites such a file.
var ErrBroken = errors.New("the file does not decode")

// splice replaces data[start:end] with text.
type splice struct {
	start, end int
	text       []byte
}

// editFile applies changes to a file's content and returns the new
// content, nil when no document is left (the file is to be removed). A
// changed object's document is replaced where it is, keeping the comment
// lines before it; a removed one goes with one separator line; a new one
// is appended. Every other byte stays as it was, and the result is
// decoded again to prove that every other object is still there,
// unchanged.
func editFile(file string, data []byte, changes []Change, opts Options) ([]byte, error) {
	if len(data) > 0 {
		if r := decodeFile(file, data, opts); r.broken {
			return nil, fmt.Errorf("edit %s: %w", file, ErrBroken)
		}
	}
	docs := splitDocuments(file, data)
	jsonMode := len(docs) > 0 && docs[0].yaml == nil

	// Where each object is: its documents and List items, the first (the
	// one that wins, as in merge) first.
	type place struct{ doc, item int }
	where := map[ObjectKey][]place{}
	for i, d := range docs {
		objs, _, _ := decodeDocument(file, d, opts)
		for _, o := range objs {
			where[o.key()] = append(where[o.key()], place{doc: i, item: o.item})
		}
	}

	var splices []splice
	var appended [][]byte
	listEdits := map[int]map[int]runtime.Object{} // doc -> item -> new object (nil: removed)
	changed := map[ObjectKey]bool{}
	for _, c := range changes {
		changed[c.Key] = true
		places := where[c.Key]
		switch {
		case len(places) == 0 && c.Object == nil:
			return nil, fmt.Errorf("edit %s: no document defines %s", file, c.Key)
		case len(places) == 0:
			text, err := render(c.Object, jsonMode)
			if err != nil {
				return nil, err
			}
			appended = append(appended, text)
			continue
		case c.Object != nil:
			places = places[:1] // the one that wins; duplicates stay rejected
		}
		for _, p := range places {
			d := docs[p.doc]
			switch {
			case p.item >= 0:
				if listEdits[p.doc] == nil {
					listEdits[p.doc] = map[int]runtime.Object{}
				}
				listEdits[p.doc][p.item] = c.Object
			case c.Object == nil:
				splices = append(splices, splice{start: d.cutStart, end: d.cutEnd})
			default:
				text, err := render(c.Object, jsonMode)
				if err != nil {
					return nil, err
				}
				splices = append(splices, replaceDocument(data, d, text, jsonMode))
			}
		}
	}
	for i, items := range listEdits {
		s, err := editList(data, docs[i], items, jsonMode)
		if err != nil {
			return nil, fmt.Errorf("edit %s: %w", file, err)
		}
		splices = append(splices, s)
	}

	out := applySplices(data, splices)
	for _, text := range appended {
		out = appendDocument(out, text, jsonMode)
	}
	if len(splitDocuments(file, out)) == 0 {
		return nil, nil
	}
	if err := verifyEdit(file, data, out, changes, changed, opts); err != nil {
		return nil, err
	}
	return out, nil
}

func render(obj runtime.Object, jsonMode bool) ([]byte, error) {
	if jsonMode {
		return renderJSON(obj)
	}
	return renderYAML(obj)
}

// replaceDocument replaces a document's text. In YAML, the comment and
// blank lines at its start (a note about the object, a license header)
// and the column-0 comment lines at its end (often about the next
// document) stay.
func replaceDocument(data []byte, d document, text []byte, jsonMode bool) splice {
	if jsonMode {
		return splice{start: d.start, end: d.end, text: text}
	}
	start, end := d.start, d.end
	for start < end {
		line := lineAt(data, start, end)
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			break
		}
		start += len(line)
	}
	for end > start {
		line := lastLine(data, start, end)
		t := bytes.TrimRight(line, " \t\r\n")
		if len(t) > 0 && t[0] != '#' {
			break
		}
		end -= len(line)
	}
	if end < d.end && end > 0 && data[end-1] != '\n' {
		text = append([]byte{'\n'}, text...)
	}
	return splice{start: start, end: end, text: text}
}

// lineAt is the line starting at pos, with its newline, within data[:limit].
func lineAt(data []byte, pos, limit int) []byte {
	if i := bytes.IndexByte(data[pos:limit], '\n'); i >= 0 {
		return data[pos : pos+i+1]
	}
	return data[pos:limit]
}

// lastLine is the last line of data[from:end], with its newline.
func lastLine(data []byte, from, end int) []byte {
	s := data[from:end]
	i := bytes.LastIndexByte(s[:max(len(s)-1, 0)], '\n')
	return s[i+1:]
}

// editList rewrites a List document with some items replaced or removed.
// The document is written again from its JSON form (its comments go), and
// removed whole when no item is left. Other items keep their content as
// written, not defaulted.
func editList(data []byte, d document, items map[int]runtime.Object, jsonMode bool) (splice, error) {
	var doc map[string]json.RawMessage
	if err := kjson.UnmarshalCaseSensitivePreserveInts(d.json, &doc); err != nil {
		return splice{}, fmt.Errorf("document %d: %w", d.index, err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(doc["items"], &raw); err != nil {
		return splice{}, fmt.Errorf("document %d: items: %w", d.index, err)
	}
	var kept []json.RawMessage
	for i, item := range raw {
		obj, edited := items[i]
		switch {
		case !edited:
			kept = append(kept, item)
		case obj != nil:
			m, err := renderMap(obj)
			if err != nil {
				return splice{}, err
			}
			b, err := json.Marshal(m)
			if err != nil {
				return splice{}, fmt.Errorf("document %d: %w", d.index, err)
			}
			kept = append(kept, b)
		}
	}
	if len(kept) == 0 {
		return splice{start: d.cutStart, end: d.cutEnd}, nil
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return splice{}, fmt.Errorf("document %d: %w", d.index, err)
	}
	doc["items"] = b
	var text []byte
	if jsonMode {
		text, err = json.MarshalIndent(doc, "", "  ")
	} else {
		var j []byte
		if j, err = json.Marshal(doc); err == nil {
			text, err = yaml.JSONToYAML(j)
		}
	}
	if err != nil {
		return splice{}, fmt.Errorf("document %d: %w", d.index, err)
	}
	return replaceDocument(data, d, text, jsonMode), nil
}

// applySplices applies non-overlapping replacements; overlapping removals
// (two neighbours sharing a separator line) are merged.
func applySplices(data []byte, ss []splice) []byte {
	slices.SortFunc(ss, func(a, b splice) int { return a.start - b.start })
	var out []byte
	pos := 0
	for _, s := range ss {
		if s.start < pos { // overlaps the previous removal
			if s.end > pos {
				pos = s.end
			}
			out = append(out, s.text...)
			continue
		}
		out = append(out, data[pos:s.start]...)
		out = append(out, s.text...)
		pos = s.end
	}
	return append(out, data[pos:]...)
}

// appendDocument adds a document at the end of a file.
func appendDocument(data, text []byte, jsonMode bool) []byte {
	out := slices.Clone(data)
	if len(bytes.TrimSpace(out)) == 0 {
		return append(out[:0], text...)
	}
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	if !jsonMode {
		out = append(out, "---\n"...)
	}
	out = append(out, text...)
	if jsonMode {
		out = append(out, '\n')
	}
	return out
}

// verifyEdit decodes the old and the new content and checks that every
// object not changed is still there, as it was, and that the changes are
// what the new content holds. A rewrite that would lose or alter another
// document is refused rather than written.
func verifyEdit(file string, before, after []byte, changes []Change, changed map[ObjectKey]bool, opts Options) error {
	was, now := decodeFile(file, before, opts), decodeFile(file, after, opts)
	if now.broken {
		return fmt.Errorf("edit %s: the new content would not decode: %v", file, now.errors)
	}
	index := func(r *fileResult) map[ObjectKey][]byte {
		m := map[ObjectKey][]byte{}
		for _, d := range r.objects {
			if _, dup := m[d.key()]; dup {
				continue
			}
			b, _ := json.Marshal(d.obj) // decoded objects always encode
			m[d.key()] = b
		}
		return m
	}
	old, got := index(was), index(now)
	for k, b := range old {
		if !changed[k] && !bytes.Equal(got[k], b) {
			return fmt.Errorf("edit %s: the rewrite would change %s, which it must keep", file, k)
		}
	}
	if len(now.errors) != len(was.errors) {
		return fmt.Errorf("edit %s: the rewrite would change the file's rejected documents", file)
	}
	for _, c := range changes {
		b, present := got[c.Key]
		if c.Object == nil {
			if present {
				return fmt.Errorf("edit %s: %s is still defined after its removal", file, c.Key)
			}
			continue
		}
		want, err := Check(c.Object, opts)
		if err != nil {
			return fmt.Errorf("edit %s: %w", file, err)
		}
		wb, _ := json.Marshal(want)
		if !bytes.Equal(b, wb) {
			return fmt.Errorf("edit %s: the rewritten document does not decode to %s as written", file, c.Key)
		}
	}
	for k := range got {
		if _, ok := old[k]; !ok && !changed[k] {
			return fmt.Errorf("edit %s: the rewrite would add %s", file, k)
		}
	}
	return nil
}
