package apiauth

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeAPIFile puts one credentials file in place, as a torn write or a
// corrupt card would leave it.
func writeAPIFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, Dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// assertServes checks what the next start must give: credentials whose
// CA is byte for byte the one clients were handed, whose server
// certificate verifies against that CA alone for every name, and a TLS
// handshake against that CA; and that the flash now holds a set that
// loads as it is (the repair was written).
func assertServes(t *testing.T, dir string, got *Credentials, clientCA []byte, names []string) {
	t.Helper()
	if !bytes.Equal(got.CACert, clientCA) {
		t.Fatal("the CA was replaced: kubeconfigs that trust the old one are locked out")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(clientCA) {
		t.Fatal("client CA does not parse")
	}
	cert, err := parseCert(got.Cert)
	if err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	for _, name := range names {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("server certificate against the clients' CA for %q: %v", name, err)
		}
	}
	handshake(t, got, roots, names[0])
	onFlash, err := LoadFlash(dir)
	if err != nil {
		t.Fatalf("the repair was not written: LoadFlash: %v", err)
	}
	if !bytes.Equal(onFlash.Cert, got.Cert) || !bytes.Equal(onFlash.Key, got.Key) {
		t.Error("the flash does not hold the certificate and key being served")
	}
}

// handshake serves c on loopback and connects as kubectl would, trusting
// roots only.
func handshake(t *testing.T, c *Credentials, roots *x509.CertPool, serverName string) {
	t.Helper()
	sc, err := c.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		conn.(*tls.Conn).Handshake()
		conn.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		t.Fatalf("TLS handshake with the clients' CA as the only root: %v", err)
	}
	conn.Close()
}

// Every torn or corrupt state a power cut or a failing card can leave
// while the CA is intact is repaired at the next start, without a person:
// the server certificate is issued again from the CA, and the CA and
// token stay.
func TestEnsureFlashRepairsTornSets(t *testing.T) {
	orig, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	moved := append([]net.IP{net.ParseIP("192.168.1.20")}, testIPs...)
	tests := []struct {
		name   string
		ips    []net.IP
		break_ func(t *testing.T, dir string)
		// newToken: the token itself was lost, so a new one is the only
		// way to serve again (loudly); the CA still stays.
		newToken bool
	}{
		{name: "key new, certificate old (reissue cut between the two files)", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, KeyFile, other.Key)
		}},
		{name: "certificate new, key old", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CertFile, other.Cert)
		}},
		{name: "truncated certificate", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CertFile, orig.Cert[:len(orig.Cert)/2])
		}},
		{name: "empty certificate", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CertFile, nil)
		}},
		{name: "truncated key", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, KeyFile, orig.Key[:len(orig.Key)/2])
		}},
		{name: "missing certificate", break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, CertFile))
		}},
		{name: "missing key", break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, KeyFile))
		}},
		{name: "missing key and certificate", break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, KeyFile))
			os.Remove(filepath.Join(dir, Dir, CertFile))
		}},
		{name: "certificate from another CA", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CertFile, other.Cert)
			writeAPIFile(t, dir, KeyFile, other.Key)
		}},
		{name: "torn certificate and a new address", ips: moved, break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, KeyFile, other.Key)
		}},
		{name: "temporary files of an interrupted write left beside them", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, "."+CertFile+"4242424242", orig.Cert[:10])
			writeAPIFile(t, dir, "."+KeyFile+".tmp-123", nil)
			if err := os.Mkdir(filepath.Join(dir, ".api-77"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeAPIFile(t, dir, "../.api-77/"+CACertFile, other.CACert)
		}},
		{name: "missing token", newToken: true, break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, TokenFile))
		}},
		{name: "empty token", newToken: true, break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, TokenFile, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := orig.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			tt.break_(t, dir)
			ips := tt.ips
			if ips == nil {
				ips = testIPs
			}
			got, r, err := Ensure(dir, testHosts, ips)
			if err != nil {
				t.Fatalf("next start: Ensure: %v", err)
			}
			if !r.Wrote() {
				t.Error("nothing written, want the repair")
			}
			for _, why := range r.Why {
				if strings.Contains(why, "<nil>") {
					t.Errorf("reason without its cause: %q", why)
				}
			}
			if tt.newToken && !slices.ContainsFunc(r.Why, func(w string) bool { return strings.HasPrefix(w, TokenFile+": ") }) {
				t.Errorf("reasons %q do not say why the token is new", r.Why)
			}
			names := append([]string{"localhost"}, testHosts...)
			for _, ip := range ips {
				names = append(names, ip.String())
			}
			assertServes(t, dir, got, orig.CACert, names)
			if !bytes.Equal(got.CAKey, orig.CAKey) {
				t.Error("the CA key changed")
			}
			if tt.newToken {
				if got.Token == "" || got.Token == orig.Token {
					t.Errorf("token %q: want a new one", got.Token)
				}
			} else if got.Token != orig.Token {
				t.Error("the token changed: kubeconfigs handed out are locked out")
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var leftovers []string
			for _, e := range entries {
				if e.Name() != Dir {
					leftovers = append(leftovers, e.Name())
				}
			}
			apiEntries, err := os.ReadDir(filepath.Join(dir, Dir))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range apiEntries {
				if strings.HasPrefix(e.Name(), ".") {
					leftovers = append(leftovers, Dir+"/"+e.Name())
				}
			}
			if len(leftovers) > 0 {
				t.Errorf("leftovers of interrupted writes were not removed: %v", leftovers)
			}
		})
	}
}

// A CA that clients trust is never replaced: when it is gone or corrupt,
// EnsureFlash says so and writes nothing, whatever else is missing.
func TestEnsureFlashNeverReplacesTheCA(t *testing.T) {
	orig, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		break_ func(t *testing.T, dir string)
	}{
		{"missing CA certificate", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, CACertFile))
		}},
		{"truncated CA certificate", func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CACertFile, orig.CACert[:len(orig.CACert)/3])
		}},
		{"CA certificate and server certificate missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, CACertFile))
			os.Remove(filepath.Join(dir, Dir, CertFile))
		}},
		{"only the token left", func(t *testing.T, dir string) {
			for _, f := range []string{CACertFile, CAKeyFile, CertFile, KeyFile} {
				os.Remove(filepath.Join(dir, Dir, f))
			}
		}},
		{"CA certificate is not a CA", func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CACertFile, other.Cert)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := orig.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			tt.break_(t, dir)
			before := snapshot(t, dir)
			c, _, err := EnsureFlash(dir, testHosts, testIPs)
			if err == nil {
				t.Fatalf("EnsureFlash served a set with a new CA (%d bytes) instead of saying the CA is gone", len(c.CACert))
			}
			for _, want := range []string{CACertFile, "not replace", "delete"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not tell a person %q", err, want)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the flash changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// A start with the addresses already in the certificate writes nothing:
// not a file, not a rename, not a temporary file.
func TestEnsureFlashSecondStartWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, changed, err := EnsureFlash(dir, testHosts, testIPs); err != nil || !changed {
		t.Fatalf("first start: changed %v, err %v", changed, err)
	}
	before := snapshot(t, dir)
	for range 3 {
		if _, changed, err := EnsureFlash(dir, testHosts, testIPs); err != nil || changed {
			t.Fatalf("next start with the same addresses: changed %v, err %v", changed, err)
		}
	}
	if after := snapshot(t, dir); after != before {
		t.Errorf("the flash changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// snapshot lists every entry under dir with what a write would change:
// inode (a rename), size, modification and change times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + " " + statLine(fi) + "\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func statLine(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	}
	return fmt.Sprintf("%v ino=%d size=%d mtime=%d.%09d ctime=%d.%09d", fi.Mode(), st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
}

// errPowerCut stands for the power going off: the step it is returned
// for, and every later one, never happens.
var errPowerCut = errors.New("power cut")

// cutAt is a flashOps that lets n steps happen and cuts the power before
// the next; steps records every step it was asked for.
func cutAt(n int, steps *[]string) flashOps {
	return flashOps{cut: func(step string) error {
		*steps = append(*steps, step)
		if len(*steps) > n {
			return errPowerCut
		}
		return nil
	}}
}

// A power cut at every step of every kind of write: the next start
// serves a certificate that verifies against the CA the flash held
// before the write (the clients' CA), for every name it is asked for, and
// the start after that writes nothing.
func TestEnsurePowerCutAtEveryStep(t *testing.T) {
	orig, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	moved := append([]net.IP{net.ParseIP("192.168.1.20")}, testIPs...)
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		ips   []net.IP
	}{
		{name: "first boot", setup: func(t *testing.T, dir string) {}},
		{name: "reissue for a new address", ips: moved, setup: func(t *testing.T, dir string) {
			if err := orig.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "repair of a lost key and token, with leftovers", ips: moved, setup: func(t *testing.T, dir string) {
			if err := orig.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, Dir, KeyFile))
			os.Remove(filepath.Join(dir, Dir, TokenFile))
			writeAPIFile(t, dir, "."+CertFile+"99", []byte("half"))
			if err := os.Mkdir(filepath.Join(dir, tempDirPrefix+"1"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ips := tt.ips
			if ips == nil {
				ips = testIPs
			}
			var all []string
			{
				dir := t.TempDir()
				tt.setup(t, dir)
				if _, _, err := ensure(dir, testHosts, ips, cutAt(1<<30, &all)); err != nil {
					t.Fatal(err)
				}
			}
			if len(all) == 0 {
				t.Fatal("no steps: nothing was written")
			}
			for n := range len(all) {
				t.Run(fmt.Sprintf("cut before step %d of %d", n+1, len(all)), func(t *testing.T) {
					dir := t.TempDir()
					tt.setup(t, dir)
					var steps []string
					if _, _, err := ensure(dir, testHosts, ips, cutAt(n, &steps)); !errors.Is(err, errPowerCut) {
						t.Fatalf("cut before %q: err = %v, want the power cut", all[n], err)
					}
					// The CA clients may have been handed: the one on the
					// flash after the cut, if any.
					clientCA, _ := os.ReadFile(filepath.Join(dir, Dir, CACertFile))
					got, r, err := Ensure(dir, testHosts, ips)
					if err != nil {
						t.Fatalf("next start after a cut before %q: %v", all[n], err)
					}
					if clientCA == nil {
						if !r.Generated {
							t.Errorf("no CA on the flash after the cut, yet the next start did not generate a set: %+v", r)
						}
						clientCA = got.CACert
					}
					names := append([]string{"localhost"}, testHosts...)
					for _, ip := range ips {
						names = append(names, ip.String())
					}
					assertServes(t, dir, got, clientCA, names)
					before := snapshot(t, dir)
					if _, r, err := Ensure(dir, testHosts, ips); err != nil || r.Wrote() {
						t.Errorf("the start after the repair: wrote %+v, err %v; want nothing", r, err)
					}
					if after := snapshot(t, dir); after != before {
						t.Errorf("the start after the repair changed the flash:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				})
			}
		})
	}
}

// A flash that cannot be written (mounted read-only after fsck) still
// serves: the repair is made in memory and returned with the error.
func TestEnsureReadOnlyFlashServesTheRepair(t *testing.T) {
	orig, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := orig.WriteFlash(dir); err != nil {
		t.Fatal(err)
	}
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	writeAPIFile(t, dir, CertFile, other.Cert)
	before := snapshot(t, dir)
	readOnly := flashOps{cut: func(step string) error { return fmt.Errorf("%s: %w", step, syscall.EROFS) }}
	got, r, err := ensure(dir, testHosts, testIPs, readOnly)
	if !errors.Is(err, syscall.EROFS) {
		t.Fatalf("err = %v, want the write's EROFS", err)
	}
	if got == nil || !r.Reissued {
		t.Fatalf("got %v, report %+v; want the repaired set", got, r)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("the set returned with the write error does not fit: %v", err)
	}
	if !bytes.Equal(got.CACert, orig.CACert) || got.Token != orig.Token {
		t.Error("the CA or the token changed")
	}
	handshake(t, got, mustPool(t, orig), "board")
	if after := snapshot(t, dir); after != before {
		t.Errorf("a read-only flash changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func mustPool(t *testing.T, c *Credentials) *x509.CertPool {
	t.Helper()
	p, err := c.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A CA key that is lost or broken leaves the CA alone: an intact pair
// serves as it is (with a warning when the key is there but broken), a
// broken pair is an error that says what to restore.
func TestEnsureWithoutAUsableCAKey(t *testing.T) {
	orig, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		break_      func(t *testing.T, dir string)
		wantWarning string
		wantErr     string
	}{
		{name: "CA key taken off the flash", break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, CAKeyFile))
		}},
		{name: "CA key of another CA", wantWarning: "does not match ca.crt", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CAKeyFile, other.CAKey)
		}},
		{name: "truncated CA key", wantWarning: "ca.key", break_: func(t *testing.T, dir string) {
			writeAPIFile(t, dir, CAKeyFile, orig.CAKey[:20])
		}},
		{name: "CA key gone and the pair torn", wantErr: "restore tls.crt and tls.key, or ca.key", break_: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, Dir, CAKeyFile))
			writeAPIFile(t, dir, KeyFile, other.Key)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := orig.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			tt.break_(t, dir)
			before := snapshot(t, dir)
			got, r, err := Ensure(dir, append([]string{"elsewhere"}, testHosts...), testIPs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Cert, orig.Cert) || !bytes.Equal(got.CACert, orig.CACert) {
					t.Error("not serving the intact pair of the flash")
				}
				warnings := strings.Join(r.Warnings, "\n")
				if tt.wantWarning == "" && warnings != "" || !strings.Contains(warnings, tt.wantWarning) {
					t.Errorf("warnings %q, want %q", warnings, tt.wantWarning)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the flash changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// WriteFlash writes a new set; it never replaces one (clients may trust
// its CA).
func TestWriteFlashRefusesToReplaceASet(t *testing.T) {
	dir := t.TempDir()
	a, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteFlash(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, Dir, CertFile))
	if err := b.WriteFlash(dir); err == nil || !strings.Contains(err.Error(), "does not replace") {
		t.Fatalf("WriteFlash over a set: %v, want a refusal", err)
	}
	got, err := os.ReadFile(filepath.Join(dir, Dir, CACertFile))
	if err != nil || !bytes.Equal(got, a.CACert) {
		t.Errorf("the CA on the flash changed (err %v)", err)
	}
}

func TestKeepSANs(t *testing.T) {
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("h%d", i))
		}
		return out
	}
	tests := []struct {
		name      string
		old, want []string
		expect    []string
	}{
		{name: "new ones after the old", old: []string{"a", "b"}, want: []string{"c"}, expect: []string{"a", "b", "c"}},
		{name: "nothing new", old: []string{"a", "b"}, want: []string{"b"}, expect: []string{"a", "b"}},
		{name: "case does not make a name new", old: []string{"board"}, want: []string{"Board"}, expect: []string{"board"}},
		{name: "the oldest make room", old: many(maxSANs), want: []string{"new"}, expect: append(many(maxSANs)[1:], "new")},
		{name: "wanted ones are never dropped", old: many(maxSANs), want: []string{"h0", "new"}, expect: append(append([]string{"h0"}, many(maxSANs)[2:]...), "new")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.expect, keepSANs(tt.old, tt.want, strings.EqualFold)); diff != "" {
				t.Errorf("keepSANs (-want +got):\n%s", diff)
			}
		})
	}
}

// A set made before every certificate named the loopbacks (no ::1) gets
// them where it is kept, once: the image builder's cache, so boards do
// not each write their flash for it at first boot.
func TestEnsureAddsTheLoopbacksOnce(t *testing.T) {
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := parseKey(c.CAKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	old := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     testHosts,
		IPAddresses:  testIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, old, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c.Cert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	dir := t.TempDir()
	if err := c.WriteFlash(dir); err != nil {
		t.Fatal(err)
	}
	got, changed, err := EnsureFlash(dir, testHosts, testIPs)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v; want ::1 added", changed, err)
	}
	if !got.Covers([]string{"localhost"}, []net.IP{net.IPv6loopback}) || !bytes.Equal(got.Key, c.Key) {
		t.Error("the new certificate lacks ::1, or the key changed")
	}
	if _, changed, err := EnsureFlash(dir, testHosts, testIPs); err != nil || changed {
		t.Errorf("again: changed %v, err %v; want nothing", changed, err)
	}
}
