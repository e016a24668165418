package nodetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podboot/podboot/agent/ota/bundle"
)

// Bundles an honest `podctl ota build` cannot make: an attacker's
// (a statement changed after it was signed, a flipped byte) and a
// release for a newer agent than this one.

// layoutTar is an OCI image layout tar held in memory: its entries in
// order, by name without a leading "./".
type layoutTar struct {
	names []string
	files map[string][]byte
}

func readLayoutTar(t testing.TB, p string) *layoutTar {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &layoutTar{files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s of %s: %v", h.Name, p, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		l.names = append(l.names, name)
		l.files[name] = data
	}
	return l
}

func (l *layoutTar) write(t testing.TB, p string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, name := range l.names {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range []string{"blobs", "blobs/sha256"} {
		if dirs[d] {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range l.names {
		data := l.files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// descriptor is the part of an OCI descriptor the tampering changes.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

func blobName(digest string) string { return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:") }

// replaceBlob puts data in place of the blob old (same position in the
// tar) and returns its digest.
func (l *layoutTar) replaceBlob(t testing.TB, old string, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	for i, n := range l.names {
		if n == blobName(old) {
			l.names[i] = blobName(digest)
		}
	}
	delete(l.files, blobName(old))
	l.files[blobName(digest)] = data
	return digest
}

// manifestAndEnvelope reads the layout's one manifest (as a generic
// object, so that no field is lost on rewriting it) and its config blob.
func (l *layoutTar) manifestAndEnvelope(t testing.TB) (index, manifest map[string]any, manifestDesc, configDesc descriptor) {
	t.Helper()
	if err := json.Unmarshal(l.files["index.json"], &index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	var idx struct{ Manifests []descriptor }
	_ = json.Unmarshal(l.files["index.json"], &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(idx.Manifests))
	}
	manifestDesc = idx.Manifests[0]
	raw, ok := l.files[blobName(manifestDesc.Digest)]
	if !ok {
		t.Fatalf("the manifest %s is not in the tar", manifestDesc.Digest)
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatalf("the manifest: %v", err)
	}
	var m struct{ Config descriptor }
	_ = json.Unmarshal(raw, &m)
	return index, manifest, manifestDesc, m.Config
}

// resignless rewrites the bundle at in into out with the statement
// changed by edit after it was signed: every digest and size is made
// right again (the config blob, the manifest, the index), so only the
// signature can tell.
func resignless(t testing.TB, in, out string, edit func(statement map[string]any)) {
	t.Helper()
	l := readLayoutTar(t, in)
	index, manifest, manifestDesc, configDesc := l.manifestAndEnvelope(t)
	var env map[string]any
	if err := json.Unmarshal(l.files[blobName(configDesc.Digest)], &env); err != nil {
		t.Fatalf("the envelope: %v", err)
	}
	var payload []byte
	if err := json.Unmarshal(mustJSON(t, env["payload"]), &payload); err != nil {
		t.Fatalf("the envelope's payload: %v", err)
	}
	var st map[string]any
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatalf("the statement: %v", err)
	}
	edit(st)
	env["payload"] = mustJSON(t, st) // []byte: base64 in JSON, as DSSE's
	envelope := mustJSON(t, env)
	configDigest := l.replaceBlob(t, configDesc.Digest, envelope)
	cfg := manifest["config"].(map[string]any)
	cfg["digest"], cfg["size"] = configDigest, len(envelope)
	rawManifest := mustJSON(t, manifest)
	manifestDigest := l.replaceBlob(t, manifestDesc.Digest, rawManifest)
	m0 := index["manifests"].([]any)[0].(map[string]any)
	m0["digest"], m0["size"] = manifestDigest, len(rawManifest)
	l.files["index.json"] = mustJSON(t, index)
	l.write(t, out)
}

// flipByte rewrites the bundle at in into out with one byte of the
// envelope's signature flipped and nothing else changed: the config
// blob no longer matches its digest.
func flipByte(t testing.TB, in, out string) {
	t.Helper()
	l := readLayoutTar(t, in)
	_, _, _, configDesc := l.manifestAndEnvelope(t)
	blob := l.files[blobName(configDesc.Digest)]
	i := bytes.LastIndex(blob, []byte(`"sig"`))
	if i < 0 {
		t.Fatalf("the envelope has no signature: %s", blob)
	}
	// The first character of the signature's base64.
	i += len(`"sig":"`)
	for blob[i] == ' ' || blob[i] == '"' || blob[i] == ':' {
		i++
	}
	if blob[i] == 'A' {
		blob[i] = 'B'
	} else {
		blob[i] = 'A'
	}
	l.write(t, out)
}

// buildForNewerAgent builds gen's bundle with the bundle package itself,
// signed by key, for an agent at least minAgent.
func buildForNewerAgent(t testing.TB, key, pods, out string, gen uint64, minAgent string) {
	t.Helper()
	priv, err := bundle.LoadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := bundle.Build(context.Background(), bundle.BuildOptions{
		Keys: []ed25519.PrivateKey{priv}, Generation: gen, PodsDir: pods, MinAgentVersion: minAgent,
	}, &buf); err != nil {
		t.Fatalf("build generation %d for agent %s: %v", gen, minAgent, err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %T: %v", v, err)
	}
	return b
}

// TestOTATamperedBundles checks the attacker's bundles above against the
// bundle package itself (no node): the forged statement, its digests all
// right again, fails only on its signature; the flipped byte is refused.
func TestOTATamperedBundles(t *testing.T) {
	dir := t.TempDir()
	pods := filepath.Join(dir, "pods")
	if err := os.MkdirAll(pods, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pods, "web.yaml", generation{number: 3, pods: []string{"web"}}.manifest("web"))
	pub, err := bundle.GenerateKey(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := bundle.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "signed.tar")
	buildForNewerAgent(t, filepath.Join(dir, "k"), pods, signed, 3, "")
	forged, flipped := filepath.Join(dir, "forged.tar"), filepath.Join(dir, "flipped.tar")
	resignless(t, signed, forged, func(st map[string]any) { st["generation"] = 30 })
	flipByte(t, signed, flipped)

	open := func(p string) error {
		store, desc, err := bundle.OpenTar(context.Background(), p)
		if err != nil {
			return err
		}
		_, err = bundle.Open(context.Background(), store, desc, bundle.Policy{Keys: []ed25519.PublicKey{key}})
		return err
	}
	if err := open(signed); err != nil {
		t.Fatalf("the untampered bundle: %v", err)
	}
	var r *bundle.Refusal
	if err := open(forged); !errors.As(err, &r) || r.Reason != bundle.ReasonBadSignature || !strings.Contains(r.Message, "generation 30") {
		t.Errorf("the forged statement: %v, want a BadSignature refusal of generation 30", err)
	}
	if err := open(flipped); !errors.As(err, &r) {
		t.Errorf("the flipped byte: %v, want a refusal", err)
	} else {
		t.Logf("the flipped byte: %s: %s", r.Reason, r.Message)
	}
}
