package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/content/oci"
)

var testPods = map[string]string{
	"web.yaml":  "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n",
	"db.yml":    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: db\n",
	"cron.json": `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"cron"}}`,
}

// testImage is a pseudo-random archive body large enough to span many reads.
func testImage(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// buildInputs writes a pods dir (with a file that is not a manifest) and an
// images dir (with a file that is not an archive).
func buildInputs(t *testing.T) (pods, images string) {
	t.Helper()
	dir := t.TempDir()
	pods, images = filepath.Join(dir, "pods"), filepath.Join(dir, "images")
	files := map[string][]byte{
		"pods/README.md":     []byte("not a manifest"),
		"images/app.tar":     testImage(1, 300<<10),
		"images/sidecar.tar": testImage(2, 70<<10),
		"images/notes.txt":   []byte("not an archive"),
	}
	for n, c := range testPods {
		files["pods/"+n] = []byte(c)
	}
	for n, c := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, c, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pods, images
}

func testBuildOptions(pods, images string) BuildOptions {
	return BuildOptions{
		Keys:       []ed25519.PrivateKey{testKey(1)},
		Generation: 7,
		PodsDir:    pods,
		ImagesDir:  images,
		Fleet:      "edge",
		Channel:    "stable",
		NextKeys:   []string{FormatPublicKey(pub(testKey(2)))},
		IssuedAt:   testIssued,
		ExpiresIn:  30 * 24 * time.Hour,
	}
}

func buildTo(t *testing.T, opts BuildOptions) string {
	t.Helper()
	var buf bytes.Buffer
	if err := Build(context.Background(), opts, &buf); err != nil {
		t.Fatalf("Build: %v", err)
	}
	path := filepath.Join(t.TempDir(), "bundle.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func testPolicy() Policy {
	return Policy{Keys: []ed25519.PublicKey{pub(testKey(1))}, Channel: "stable", Committed: 6, AgentVersion: "v0.13.0", Now: testIssued, ClockTrusted: true}
}

func TestBuildOpenUnpack(t *testing.T) {
	ctx := context.Background()
	pods, images := buildInputs(t)
	path := buildTo(t, testBuildOptions(pods, images))

	store, root, err := OpenTar(ctx, path)
	if err != nil {
		t.Fatalf("OpenTar: %v", err)
	}
	b, err := Open(ctx, store, root, testPolicy())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	expires := testIssued.Add(30 * 24 * time.Hour)
	wantLayers := []Layer{
		{MediaType: MediaTypePods, Name: "pods.tar"},
		{MediaType: MediaTypeImage, Digest: digest.FromBytes(testImage(1, 300<<10)).String(), Size: 300 << 10, Name: "app.tar"},
		{MediaType: MediaTypeImage, Digest: digest.FromBytes(testImage(2, 70<<10)).String(), Size: 70 << 10, Name: "sidecar.tar"},
	}
	want := &Statement{
		Fleet: "edge", Channel: "stable", Generation: 7, MinAgentVersion: "v0.13.0",
		IssuedAt: testIssued, Expires: &expires, Layers: wantLayers,
		NextKeys: []string{FormatPublicKey(pub(testKey(2)))},
	}
	ignorePodsDigest := cmp.FilterPath(func(p cmp.Path) bool {
		return strings.HasSuffix(p.GoString(), "Layers[0].Digest") || strings.HasSuffix(p.GoString(), "Layers[0].Size")
	}, cmp.Ignore())
	if diff := cmp.Diff(want, b.Statement, ignorePodsDigest); diff != "" {
		t.Errorf("statement (-want +got):\n%s", diff)
	}

	w := newMemWriter()
	if err := b.Unpack(ctx, w, "/flash/ota/gen/7.tmp"); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	wantFiles := map[string][]byte{
		"/flash/ota/gen/7.tmp/statement.json":     b.Envelope,
		"/flash/ota/gen/7.tmp/images/app.tar":     testImage(1, 300<<10),
		"/flash/ota/gen/7.tmp/images/sidecar.tar": testImage(2, 70<<10),
	}
	for n, c := range testPods {
		wantFiles["/flash/ota/gen/7.tmp/pods/"+n] = []byte(c)
	}
	if diff := cmp.Diff(wantFiles, w.files); diff != "" {
		t.Errorf("unpacked files (-want +got):\n%s", diff)
	}
	if _, err := (Policy{Keys: testPolicy().Keys, Committed: 6}).Verify(w.files["/flash/ota/gen/7.tmp/statement.json"]); err != nil {
		t.Errorf("the unpacked statement.json does not verify on its own: %v", err)
	}

	// The pods layer is deterministic: sorted, no times, owners or modes
	// from the build host.
	rc, err := store.Fetch(ctx, ocispec.Descriptor{Digest: digest.Digest(b.Statement.Layers[0].Digest), Size: b.Statement.Layers[0].Size})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var headers []tar.Header
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		headers = append(headers, tar.Header{Name: h.Name, Mode: h.Mode, ModTime: h.ModTime, Uid: h.Uid, Gid: h.Gid, Uname: h.Uname, Typeflag: h.Typeflag})
	}
	var wantHeaders []tar.Header
	for _, n := range []string{"cron.json", "db.yml", "web.yaml"} {
		wantHeaders = append(wantHeaders, tar.Header{Name: n, Mode: 0o644, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg})
	}
	if diff := cmp.Diff(wantHeaders, headers); diff != "" {
		t.Errorf("pods layer entries (-want +got):\n%s", diff)
	}
}

// TestBuildInterop: what Build writes is an OCI layout that oras-go's own
// reader and OpenLayout (the tar unpacked onto a USB stick) open too.
func TestBuildInterop(t *testing.T) {
	ctx := context.Background()
	pods, images := buildInputs(t)
	path := buildTo(t, testBuildOptions(pods, images))
	_, root, err := OpenTar(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := oci.NewFromTar(ctx, path)
	if err != nil {
		t.Fatalf("oci.NewFromTar: %v", err)
	}
	got, err := ro.Resolve(ctx, root.Digest.String())
	if err != nil {
		t.Fatalf("resolve the manifest with oras-go: %v", err)
	}
	if got.Digest != root.Digest || got.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("oras-go resolved %v, want %v", got, root)
	}
	if root.ArtifactType != ArtifactType || root.Annotations[ocispec.AnnotationCreated] != "2026-12-01T10:00:00Z" {
		t.Errorf("index descriptor %+v lacks the artifact type or the created annotation from IssuedAt", root)
	}

	dir := untar(t, path)
	store, desc, err := OpenLayout(ctx, dir)
	if err != nil {
		t.Fatalf("OpenLayout: %v", err)
	}
	if desc.Digest != root.Digest {
		t.Errorf("OpenLayout manifest %s, OpenTar %s", desc.Digest, root.Digest)
	}
	b, err := Open(ctx, store, desc, testPolicy())
	if err != nil {
		t.Fatalf("Open from the layout directory: %v", err)
	}
	if err := b.Unpack(ctx, newMemWriter(), "/gen"); err != nil {
		t.Fatalf("Unpack from the layout directory: %v", err)
	}
}

func untar(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenLayoutPicksLatest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var descs []ocispec.Descriptor
	for i, tag := range []string{"v1", "latest", "v3"} {
		d, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{
			ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: testIssued.Add(time.Duration(i) * time.Hour).Format(time.RFC3339)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Tag(ctx, d, tag); err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
	}
	_, got, err := OpenLayout(ctx, dir)
	if err != nil {
		t.Fatalf("OpenLayout: %v", err)
	}
	if got.Digest != descs[1].Digest {
		t.Errorf("OpenLayout picked %s, want the one tagged latest %s", got.Digest, descs[1].Digest)
	}
	if err := store.Untag(ctx, "latest"); err != nil {
		t.Fatal(err)
	}
	_, _, err = OpenLayout(ctx, dir)
	if r := asRefusal(t, err); r.Reason != ReasonMalformed || !strings.Contains(r.Message, `holds 3 manifests and none is tagged "latest"`) {
		t.Errorf("OpenLayout of three untagged-latest manifests: %#v", r)
	}
}

func TestBuildDeterministic(t *testing.T) {
	pods, images := buildInputs(t)
	opts := testBuildOptions(pods, images)
	opts.Keys = append(opts.Keys, testKey(3))
	var a, b bytes.Buffer
	if err := Build(context.Background(), opts, &a); err != nil {
		t.Fatal(err)
	}
	// Touch every input: mtimes and modes must not matter.
	later := time.Now().Add(time.Hour)
	for _, d := range []string{pods, images} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			p := filepath.Join(d, e.Name())
			if err := os.Chtimes(p, later, later); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := Build(context.Background(), opts, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two builds of equal inputs differ (%d and %d bytes)", a.Len(), b.Len())
	}
	opts.IssuedAt = opts.IssuedAt.Add(time.Second)
	var c bytes.Buffer
	if err := Build(context.Background(), opts, &c); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Errorf("builds issued a second apart are identical: IssuedAt is not in the bundle")
	}
}

func TestBuildErrors(t *testing.T) {
	pods, images := buildInputs(t)
	empty := t.TempDir()
	clash := t.TempDir()
	if err := os.WriteFile(filepath.Join(clash, "pods.tar"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*BuildOptions)
		want string
	}{
		{"no key", func(o *BuildOptions) { o.Keys = nil }, "build bundle: no signing key"},
		{"generation 0", func(o *BuildOptions) { o.Generation = 0 }, "build bundle: the generation must be 1 or more"},
		{"no pods dir", func(o *BuildOptions) { o.PodsDir = "" }, "build bundle generation 7: no pods directory"},
		{"no manifests", func(o *BuildOptions) { o.PodsDir = empty }, "holds no *.yaml, *.yml or *.json file"},
		{"missing images dir", func(o *BuildOptions) { o.ImagesDir = filepath.Join(empty, "nope") }, "list image archives"},
		{"image named like the pods layer", func(o *BuildOptions) { o.ImagesDir = clash }, `the statement names layer "pods.tar" twice`},
		{"bad min agent version", func(o *BuildOptions) { o.MinAgentVersion = "13" }, `minimum agent version "13" is not a semantic version`},
		{"bad next key", func(o *BuildOptions) { o.NextKeys = []string{"rsa:x"} }, `next keys: parse public key "rsa:x"`},
		{"next threshold above the next keys", func(o *BuildOptions) { o.NextThreshold = 2 }, "next threshold 2 is not between 0 and the 1 next keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testBuildOptions(pods, images)
			tt.edit(&opts)
			var out bytes.Buffer
			err := Build(context.Background(), opts, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: err = %v, want one containing %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("a failed Build wrote %d bytes", out.Len())
			}
		})
	}
}

// assemble puts a bundle into a memory store the way Build lays it out, but
// from raw pods-layer bytes, and lets edit change the statement and the
// manifest's layers before signing: bundles Build never makes.
func assemble(t *testing.T, podsTar []byte, images map[string][]byte, edit func(st *Statement, layers *[]ocispec.Descriptor)) (*memory.Store, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	push := func(mediaType string, data []byte) ocispec.Descriptor {
		d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if err := store.Push(ctx, d, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	st := testStatement(7)
	st.Layers = nil
	layers := []ocispec.Descriptor{push(MediaTypePods, podsTar)}
	st.Layers = append(st.Layers, Layer{MediaType: MediaTypePods, Digest: layers[0].Digest.String(), Size: layers[0].Size, Name: PodsLayerName})
	for _, n := range []string{"app.tar", "sidecar.tar"} {
		if data, ok := images[n]; ok {
			d := push(MediaTypeImage, data)
			layers = append(layers, d)
			st.Layers = append(st.Layers, Layer{MediaType: MediaTypeImage, Digest: d.Digest.String(), Size: d.Size, Name: n})
		}
	}
	if edit != nil {
		edit(st, &layers)
	}
	env := mustSign(t, st, testKey(1))
	config := push(MediaTypeEnvelope, env)
	root, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, ArtifactType, oras.PackManifestOptions{Layers: layers, ConfigDescriptor: &config})
	if err != nil {
		t.Fatal(err)
	}
	return store, root
}

type tarEntry2 struct {
	hdr  tar.Header
	body string
}

func makeTar(t *testing.T, entries ...tarEntry2) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, body string) tarEntry2 {
	return tarEntry2{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name}, body: body}
}

// corrupting serves one blob altered: the storage lies, the statement does not.
type corrupting struct {
	content.Fetcher
	digest digest.Digest
	alter  func([]byte) []byte
}

func (c corrupting) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	rc, err := c.Fetcher.Fetch(ctx, d)
	if err != nil || d.Digest != c.digest {
		return rc, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(c.alter(data))), nil
}

func TestOpenRefusals(t *testing.T) {
	ctx := context.Background()
	pods := makeTar(t, reg("web.yaml", testPods["web.yaml"]))
	images := map[string][]byte{"app.tar": testImage(1, 4096)}
	other := testImage(9, 4096)
	tests := []struct {
		name    string
		edit    func(*Statement, *[]ocispec.Descriptor)
		reason  string
		message string
	}{
		{
			name: "manifest layer differs from the statement",
			edit: func(_ *Statement, l *[]ocispec.Descriptor) {
				(*l)[1].Digest = digest.FromBytes(other)
			},
			reason: ReasonLayerMismatch,
			message: `bundle generation 7 refused: layer 1 "app.tar" is ` + digest.FromBytes(other).String() + ` (4096 bytes, application/vnd.podboot.ota.image.v1.tar) in the manifest and ` +
				digest.FromBytes(images["app.tar"]).String() + ` (4096 bytes, application/vnd.podboot.ota.image.v1.tar) in the signed statement (layer mismatch)`,
		},
		{
			name:    "manifest has a layer the statement does not name",
			edit:    func(_ *Statement, l *[]ocispec.Descriptor) { *l = append(*l, (*l)[1]) },
			reason:  ReasonLayerMismatch,
			message: `bundle generation 7 refused: the manifest has 3 layers and the signed statement names 2 (layer mismatch)`,
		},
		{
			name:    "statement size differs",
			edit:    func(s *Statement, _ *[]ocispec.Descriptor) { s.Layers[1].Size = 4000 },
			reason:  ReasonLayerMismatch,
			message: `bundle generation 7 refused: layer 1 "app.tar" is ` + digest.FromBytes(images["app.tar"]).String() + ` (4096 bytes, application/vnd.podboot.ota.image.v1.tar) in the manifest and ` + digest.FromBytes(images["app.tar"]).String() + ` (4000 bytes, application/vnd.podboot.ota.image.v1.tar) in the signed statement (layer mismatch)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, root := assemble(t, pods, images, tt.edit)
			_, err := Open(ctx, store, root, testPolicy())
			if diff := cmp.Diff(&Refusal{Reason: tt.reason, Message: tt.message}, asRefusal(t, err)); diff != "" {
				t.Errorf("refusal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenCaps(t *testing.T) {
	ctx := context.Background()
	store, root := assemble(t, makeTar(t, reg("web.yaml", "x")), nil, nil)
	big := root
	big.Size = MaxManifestSize + 1
	_, err := Open(ctx, store, big, testPolicy())
	if r := asRefusal(t, err); r.Reason != ReasonMalformed || !strings.Contains(r.Message, "the limit is 1048576") {
		t.Errorf("manifest above the cap: %#v", r)
	}
	// A storage that sends more than the descriptor says is never read
	// past the size plus one byte.
	long := corrupting{Fetcher: store, digest: root.Digest, alter: func(b []byte) []byte { return append(b, bytes.Repeat([]byte(" "), 10<<20)...) }}
	_, err = Open(ctx, long, root, testPolicy())
	if r := asRefusal(t, err); r.Reason != ReasonMalformed || !strings.Contains(r.Message, "the manifest is longer than") {
		t.Errorf("manifest longer than its descriptor: %#v", r)
	}
	short := corrupting{Fetcher: store, digest: root.Digest, alter: func(b []byte) []byte { return b[:10] }}
	_, err = Open(ctx, short, root, testPolicy())
	if r := asRefusal(t, err); r.Reason != ReasonTruncated || r.Message != "bundle refused: the manifest is truncated: 10 of "+itoa(root.Size)+" bytes (truncated)" {
		t.Errorf("truncated manifest: %#v", r)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestUnpackRefusals(t *testing.T) {
	ctx := context.Background()
	good := makeTar(t, reg("web.yaml", testPods["web.yaml"]))
	app := testImage(1, 64<<10)
	appDigest := digest.FromBytes(app)
	tests := []struct {
		name    string
		pods    []byte
		corrupt func(podsDigest digest.Digest) (digest.Digest, func([]byte) []byte)
		reason  string
		message string
	}{
		{
			name: "truncated image layer", pods: good,
			corrupt: func(digest.Digest) (digest.Digest, func([]byte) []byte) {
				return appDigest, func(b []byte) []byte { return b[:1000] }
			},
			reason: ReasonTruncated, message: `bundle generation 7 refused: layer "app.tar" is truncated: 1000 of 65536 bytes (truncated)`,
		},
		{
			name: "image layer with one byte changed", pods: good,
			corrupt: func(digest.Digest) (digest.Digest, func([]byte) []byte) {
				return appDigest, func(b []byte) []byte { b = bytes.Clone(b); b[40000] ^= 1; return b }
			},
			reason: ReasonLayerMismatch, message: `bundle generation 7 refused: layer "app.tar" does not match its digest ` + appDigest.String() + ` (layer mismatch)`,
		},
		{
			name: "image layer longer than signed", pods: good,
			corrupt: func(digest.Digest) (digest.Digest, func([]byte) []byte) {
				return appDigest, func(b []byte) []byte { return append(bytes.Clone(b), 0) }
			},
			reason: ReasonLayerMismatch, message: `bundle generation 7 refused: layer "app.tar" is longer than the 65536 bytes it should have (layer mismatch)`,
		},
		{
			name: "truncated pods layer", pods: good,
			corrupt: func(d digest.Digest) (digest.Digest, func([]byte) []byte) {
				return d, func(b []byte) []byte { return b[:600] }
			},
			reason: ReasonTruncated, message: `bundle generation 7 refused: layer "pods.tar" is truncated: 600 of 2048 bytes (truncated)`,
		},
		{
			name: "pods layer altered", pods: good,
			corrupt: func(d digest.Digest) (digest.Digest, func([]byte) []byte) {
				return d, func(b []byte) []byte { b = bytes.Clone(b); b[512] = 'X'; return b }
			},
			reason: ReasonLayerMismatch, message: `bundle generation 7 refused: layer "pods.tar" does not match its digest %s (layer mismatch)`,
		},
		{
			name: "path traversal", pods: makeTar(t, reg("../../etc/cron.yaml", "x")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "../../etc/cron.yaml" is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory) (malformed)`,
		},
		{
			name: "absolute path", pods: makeTar(t, reg("/etc/web.yaml", "x")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "/etc/web.yaml" is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory) (malformed)`,
		},
		{
			name: "subdirectory", pods: makeTar(t, reg("sub/web.yaml", "x")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "sub/web.yaml" is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory) (malformed)`,
		},
		{
			name: "symlink", pods: makeTar(t, reg("web.yaml", "x"), tarEntry2{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "db.yaml", Linkname: "/etc/shadow"}}),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "db.yaml" is not a regular file (tar type "2") (malformed)`,
		},
		{
			name: "hard link", pods: makeTar(t, reg("web.yaml", "x"), tarEntry2{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "db.yaml", Linkname: "web.yaml"}}),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "db.yaml" is not a regular file (tar type "1") (malformed)`,
		},
		{
			name: "directory entry", pods: makeTar(t, tarEntry2{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "sub/", Mode: 0o755}}),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "sub/" is not a regular file (tar type "5") (malformed)`,
		},
		{
			name: "not a manifest", pods: makeTar(t, reg("run.sh", "#!/bin/sh")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry "run.sh" is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory) (malformed)`,
		},
		{
			name: "hidden file", pods: makeTar(t, reg(".web.yaml", "x")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer's entry ".web.yaml" is not a manifest file name ([A-Za-z0-9._-] ending in .yaml, .yml or .json, no directory) (malformed)`,
		},
		{
			name: "a name twice", pods: makeTar(t, reg("web.yaml", "a"), reg("web.yaml", "b")),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer holds "web.yaml" twice (malformed)`,
		},
		{
			name: "not a tar", pods: bytes.Repeat([]byte("not a tar "), 100),
			reason: ReasonMalformed, message: `bundle generation 7 refused: the pods layer is not a valid tar: archive/tar: invalid tar header (malformed)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem, root := assemble(t, tt.pods, map[string][]byte{"app.tar": app}, nil)
			var store content.Fetcher = mem
			b, err := Open(ctx, store, root, testPolicy())
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			message := tt.message
			if tt.corrupt != nil {
				d, alter := tt.corrupt(digest.Digest(b.Statement.Layers[0].Digest))
				store = corrupting{Fetcher: mem, digest: d, alter: alter}
				b.store = store
				if strings.Contains(message, "%s") {
					message = strings.Replace(message, "%s", string(d), 1)
				}
			}
			w := newMemWriter()
			err = b.Unpack(ctx, w, "/gen/7.tmp")
			if diff := cmp.Diff(&Refusal{Reason: tt.reason, Message: message}, asRefusal(t, err)); diff != "" {
				t.Errorf("refusal (-want +got):\n%s", diff)
			}
			// No file made from unverified bytes may look complete.
			for p := range w.files {
				if strings.Contains(tt.name, "image") && strings.HasSuffix(p, "app.tar") {
					t.Errorf("%s was written although its layer did not verify", p)
				}
				if !strings.HasPrefix(p, "/gen/7.tmp/") {
					t.Errorf("%s written outside the generation directory", p)
				}
			}
		})
	}
}

func TestOpenTarRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notTar := filepath.Join(dir, "not.tar")
	if err := os.WriteFile(notTar, bytes.Repeat([]byte("garbage!"), 200), 0o644); err != nil {
		t.Fatal(err)
	}
	noLayout := filepath.Join(dir, "nolayout.tar")
	if err := os.WriteFile(noLayout, makeTar(t, reg("index.json", `{"manifests":[]}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two.tar")
	m := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":2}`
	if err := os.WriteFile(two, makeTar(t, reg("oci-layout", `{"imageLayoutVersion":"1.0.0"}`), reg("index.json", `{"schemaVersion":2,"manifests":[`+m+`,`+m+`]}`)), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{notTar, "bundle refused: " + notTar + " is not a tar: archive/tar: invalid tar header (malformed)"},
		{noLayout, "bundle refused: " + noLayout + " is not an OCI image layout: open oci-layout: file does not exist (malformed)"},
		{two, "bundle refused: " + two + "'s index.json holds 2 manifests, want exactly one (malformed)"},
	}
	for _, tt := range tests {
		_, _, err := OpenTar(ctx, tt.path)
		if diff := cmp.Diff(&Refusal{Reason: ReasonMalformed, Message: tt.want}, asRefusal(t, err)); diff != "" {
			t.Errorf("OpenTar(%s) (-want +got):\n%s", filepath.Base(tt.path), diff)
		}
	}
}
