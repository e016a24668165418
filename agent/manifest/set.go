package manifest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Options are what the decoder needs to know about the node it runs on.
type Options struct {
	// NodeName becomes spec.nodeName of every pod and is part of its UID.
	NodeName string
}

// Set is the desired state described by a manifest directory (or one file).
// Every object in it was decoded strictly, defaulted and validated; every
// document that was not is in Errors instead.
type Set struct {
	Pods       []*corev1.Pod       // defaulted, validated, sorted by namespace/name
	ConfigMaps []*corev1.ConfigMap // sorted by namespace/name
	Secrets    []*corev1.Secret    // sorted by namespace/name
	Namespaces []*corev1.Namespace // declared ones only, sorted by name
	Errors     []*DocumentError    // one per rejected document, in file and document order

	// sources are the documents that define each object: the one that
	// wins first, then those whose duplicate was rejected.
	sources map[ObjectKey][]Location
}

// Location is a document of a file of the directory.
type Location struct {
	File  string // the file's name in the directory
	Index int    // the document's index in the file, as DocumentError counts
	// Fleet says the file is in the running OTA generation's pods
	// directory, not the board's own (only in a Set made by Union).
	Fleet bool
}

// ObjectKey names an object: its kind ("Pod", "ConfigMap", "Secret",
// "Namespace"), namespace ("" for a Namespace) and name.
type ObjectKey struct {
	Kind, Namespace, Name string
}

func (k ObjectKey) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// Source returns the name of the file (in the directory) whose document
// defines the object, if the Set holds it.
func (s *Set) Source(k ObjectKey) (Location, bool) {
	l := s.sources[k]
	if len(l) == 0 {
		return Location{}, false
	}
	return l[0], true
}

// Sources returns every file that defines the object: Source's, then the
// files of its rejected duplicates (deleting the object removes them all).
func (s *Set) Sources(k ObjectKey) []string {
	var files []string
	for _, l := range s.sources[k] {
		if !slices.Contains(files, l.File) {
			files = append(files, l.File)
		}
	}
	return files
}

// Hash is a digest of the objects and error messages of s: two Sets with the
// same Hash describe the same desired state and report the same problems.
func (s *Set) Hash() string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	// Encoding these types cannot fail: they hold no channels, funcs or
	// cyclic values. The errors are therefore ignored on purpose.
	_ = enc.Encode(s.Pods)
	_ = enc.Encode(s.ConfigMaps)
	_ = enc.Encode(s.Secrets)
	_ = enc.Encode(s.Namespaces)
	for _, e := range s.Errors {
		fmt.Fprintln(h, e.Error())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DocumentError is a document (or a whole file) that was not applied.
type DocumentError struct {
	File      string // file name as given to Decode, or the base name within the directory
	Index     int    // 0-based index of the document in the file; -1 for the whole file
	Kind      string // as written, "" if unknown
	Namespace string // after defaulting, "" for cluster-scoped or unknown
	Name      string // as written, "" if unknown
	Field     string // path of the first offending field, "" if none
	Err       error
}

func (e *DocumentError) Error() string {
	where := e.File
	if e.Index >= 0 {
		where = fmt.Sprintf("%s: document %d", e.File, e.Index)
	}
	if id := e.object(); id != "" {
		where += " (" + id + ")"
	}
	return where + ": " + e.Err.Error()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// object names the object the error is about, e.g. "Pod default/web".
func (e *DocumentError) object() string {
	name := e.Name
	if e.Namespace != "" {
		name = e.Namespace + "/" + e.Name
	}
	switch {
	case e.Kind == "" && name == "":
		return ""
	case e.Kind == "":
		return name
	case name == "":
		return e.Kind
	}
	return e.Kind + " " + name
}

// decoded is one accepted object with the place it came from.
type decoded struct {
	file  string
	index int
	item  int // index in the document's List items; -1 if not in a List
	kind  string
	ns    string
	name  string
	obj   any // *corev1.Pod, *corev1.ConfigMap, *corev1.Secret or *corev1.Namespace
}

func (d *decoded) key() ObjectKey { return ObjectKey{Kind: d.kind, Namespace: d.ns, Name: d.name} }

// fileResult is what one file decoded to.
type fileResult struct {
	objects []*decoded
	errors  []*DocumentError
	// broken means the file failed as a whole: it could not be read, a
	// document is not even syntactically YAML/JSON, or it holds nothing.
	// A half-written file looks like this; see the Watcher's last-good rule.
	broken bool
}

// merge builds a Set from per-file results given in file-name order: the
// first definition of a kind/namespace/name wins and later ones are errors.
func merge(results []*fileResult) *Set {
	s := &Set{sources: map[ObjectKey][]Location{}}
	seen := map[ObjectKey]*decoded{}
	for _, r := range results {
		for _, d := range r.objects {
			if first, dup := seen[d.key()]; dup {
				s.sources[d.key()] = append(s.sources[d.key()], Location{File: d.file, Index: d.index})
				s.Errors = append(s.Errors, &DocumentError{
					File: d.file, Index: d.index, Kind: d.kind, Namespace: d.ns, Name: d.name,
					Err: fmt.Errorf("duplicate %s: already defined in %s document %d, which wins", d.kind, first.file, first.index),
				})
				continue
			}
			seen[d.key()] = d
			s.sources[d.key()] = []Location{{File: d.file, Index: d.index}}
			switch o := d.obj.(type) {
			case *corev1.Pod:
				s.Pods = append(s.Pods, o)
			case *corev1.ConfigMap:
				s.ConfigMaps = append(s.ConfigMaps, o)
			case *corev1.Secret:
				s.Secrets = append(s.Secrets, o)
			case *corev1.Namespace:
				s.Namespaces = append(s.Namespaces, o)
			}
		}
		s.Errors = append(s.Errors, r.errors...)
	}
	s.sortObjects()
	slices.SortStableFunc(s.Errors, func(a, b *DocumentError) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Index, b.Index))
	})
	return s
}

// sortObjects sorts each kind's objects by namespace and name.
func (s *Set) sortObjects() {
	byNamespaceName := func(ans, an, bns, bn string) int {
		return cmp.Or(cmp.Compare(ans, bns), cmp.Compare(an, bn))
	}
	slices.SortFunc(s.Pods, func(a, b *corev1.Pod) int {
		return byNamespaceName(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	slices.SortFunc(s.ConfigMaps, func(a, b *corev1.ConfigMap) int {
		return byNamespaceName(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	slices.SortFunc(s.Secrets, func(a, b *corev1.Secret) int {
		return byNamespaceName(a.Namespace, a.Name, b.Namespace, b.Name)
	})
	slices.SortFunc(s.Namespaces, func(a, b *corev1.Namespace) int { return cmp.Compare(a.Name, b.Name) })
}

// Object returns the object the Set holds under k.
func (s *Set) Object(k ObjectKey) (runtime.Object, bool) {
	find := func(n int, at func(int) (runtime.Object, string, string)) (runtime.Object, bool) {
		for i := range n {
			if obj, ns, name := at(i); ns == k.Namespace && name == k.Name {
				return obj, true
			}
		}
		return nil, false
	}
	switch k.Kind {
	case "Pod":
		return find(len(s.Pods), func(i int) (runtime.Object, string, string) { p := s.Pods[i]; return p, p.Namespace, p.Name })
	case "ConfigMap":
		return find(len(s.ConfigMaps), func(i int) (runtime.Object, string, string) {
			c := s.ConfigMaps[i]
			return c, c.Namespace, c.Name
		})
	case "Secret":
		return find(len(s.Secrets), func(i int) (runtime.Object, string, string) { c := s.Secrets[i]; return c, c.Namespace, c.Name })
	case "Namespace":
		return find(len(s.Namespaces), func(i int) (runtime.Object, string, string) { n := s.Namespaces[i]; return n, "", n.Name })
	}
	return nil, false
}
