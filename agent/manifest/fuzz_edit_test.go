package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// FuzzEdit runs sequences of the API's writes (label, a spec change,
// remove, create) over a file's content and checks after each one that
// the result decodes (or that the file was refused and left as it was, or
// removed once empty), that every other object is still there unchanged,
// and that every untouched document's text is still in the file, byte for
// byte. The corpus in testdata/fuzz/FuzzEdit runs as a normal test.
func FuzzEdit(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/decode/*")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, []byte{0, 5, 2, 3, 9, 6})
		}
	}
	f.Add([]byte(threePods), []byte{0, 4, 9, 2, 3, 6, 10, 1})
	f.Add([]byte(twoPods), []byte{1, 2, 3, 7, 14})
	f.Add([]byte("# header only\n---\n"+podYAML("a", "x")+"---\n---\n"+podYAML("a", "y")), []byte{2, 2, 3})
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- "+indentItem(podYAML("a", "x"))+"- "+indentItem(podYAML("b", "y"))), []byte{0, 1, 6, 2, 2})
	f.Add([]byte(podYAML("a", "x")+"---\nkind: Pod\n"), []byte{0})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		if len(ops) > 8 {
			ops = ops[:8]
		}
		file := "f.yaml"
		if len(ops) > 0 && ops[0]&0x80 != 0 {
			file = "f.json"
		}
		cur := data
		for n, op := range ops {
			before := decodeFile(file, cur, testOpts)
			change, ok := fuzzChange(before, op, n)
			if !ok {
				continue
			}
			out, err := editFile(file, cur, []Change{change}, testOpts)
			if err != nil {
				if len(cur) > 0 && before.broken && errors.Is(err, ErrBroken) {
					return // a broken file is never rewritten
				}
				t.Fatalf("op %d (%s %s): refused a file that decodes: %v\n%s", n, opName(change), change.Key, err, cur)
			}
			checkEdit(t, file, cur, out, change, before)
			cur = out
		}
	})
}

// fuzzChange picks the write op names over the objects of a file.
func fuzzChange(r *fileResult, op byte, n int) (Change, bool) {
	var objs []*decoded
	seen := map[ObjectKey]bool{}
	for _, d := range r.objects {
		if !seen[d.key()] {
			seen[d.key()] = true
			objs = append(objs, d)
		}
	}
	what := op & 3
	if what == 3 || len(objs) == 0 {
		p := Decode("new.yaml", []byte(podYAML(fmt.Sprintf("new-%d-%d", n, op), "busybox")), testOpts).Pods[0]
		return Change{Key: ObjectKey{Kind: "Pod", Namespace: "default", Name: p.Name}, Object: p}, true
	}
	d := objs[int(op>>2)%len(objs)]
	if what == 2 {
		return Change{Key: d.key()}, true
	}
	obj := d.obj.(runtime.Object).DeepCopyObject()
	m := metaOf(obj)
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	m.Labels["fuzz"] = fmt.Sprint(n)
	if what == 1 {
		switch o := obj.(type) {
		case *corev1.Pod:
			o.Spec.Containers[0].Image = fmt.Sprintf("image-%d", n)
		case *corev1.ConfigMap:
			o.Data = map[string]string{"k": fmt.Sprint(n)}
		}
	}
	return Change{Key: d.key(), Object: obj}, true
}

func opName(c Change) string {
	if c.Object == nil {
		return "remove"
	}
	return "save"
}

func checkEdit(t *testing.T, file string, before, after []byte, c Change, was *fileResult) {
	t.Helper()
	encode := func(r *fileResult) map[ObjectKey]string {
		m := map[ObjectKey]string{}
		for _, d := range r.objects {
			if _, dup := m[d.key()]; !dup {
				b, _ := json.Marshal(d.obj)
				m[d.key()] = string(b)
			}
		}
		return m
	}
	old := encode(was)
	if after == nil {
		for k := range old {
			if k != c.Key {
				t.Fatalf("%s %s: the file was emptied but held %s\n%s", opName(c), c.Key, k, before)
			}
		}
		return
	}
	now := decodeFile(file, after, testOpts)
	if now.broken {
		t.Fatalf("%s %s: the new content does not decode: %v\n--- before\n%s\n--- after\n%s", opName(c), c.Key, now.errors, before, after)
	}
	got := encode(now)
	for k, v := range old {
		if k != c.Key && got[k] != v {
			t.Fatalf("%s %s: %s changed or was lost\n--- before\n%s\n--- after\n%s", opName(c), c.Key, k, before, after)
		}
	}
	if _, present := got[c.Key]; present != (c.Object != nil) {
		t.Fatalf("%s %s: present after = %v\n%s", opName(c), c.Key, present, after)
	}
	// Untouched documents keep their text.
	for _, d := range splitDocuments(file, before) {
		objs, _, _ := decodeDocument(file, d, testOpts)
		touched := false
		for _, o := range objs {
			touched = touched || o.key() == c.Key
		}
		if !touched && !bytes.Contains(after, before[d.start:d.end]) {
			t.Fatalf("%s %s: document %d's text is gone\n--- before\n%s\n--- after\n%s", opName(c), c.Key, d.index, before, after)
		}
	}
}
