package apiauth

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	testHosts = []string{"localhost", "board"}
	testIPs   = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.2.15")}
)

func TestGenerate(t *testing.T) {
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(c.Token) != 64 {
		t.Errorf("token %q: want 64 hex characters", c.Token)
	}
	cert, err := parseCert(c.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"localhost", "board"}, cert.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	var gotIPs []string
	for _, ip := range cert.IPAddresses {
		gotIPs = append(gotIPs, ip.String())
	}
	// The loopbacks are in every certificate.
	if diff := cmp.Diff([]string{"127.0.0.1", "10.0.2.15", "::1"}, gotIPs); diff != "" {
		t.Errorf("IP SANs (-want +got):\n%s", diff)
	}
	ca, err := parseCert(c.CACert)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA {
		t.Error("CA certificate is not a CA")
	}
	if years := ca.NotAfter.Sub(ca.NotBefore).Hours() / 24 / 365; years < 10 {
		t.Errorf("CA valid for %.1f years, want 10", years)
	}
	pool, err := c.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "board", "10.0.2.15"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify server certificate for %q: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other"}); err == nil {
		t.Error("server certificate verified for a name it does not carry")
	}
	other, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if other.Token == c.Token {
		t.Error("two generations gave the same token")
	}
}

func TestFlashRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteFlash(dir); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{}
	for _, name := range []string{CACertFile, CAKeyFile, CertFile, KeyFile, TokenFile} {
		st, err := os.Stat(filepath.Join(dir, Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		modes[name] = st.Mode().Perm()
	}
	wantModes := map[string]os.FileMode{CACertFile: 0o644, CAKeyFile: 0o600, CertFile: 0o644, KeyFile: 0o600, TokenFile: 0o600}
	if diff := cmp.Diff(wantModes, modes); diff != "" {
		t.Errorf("file modes (-want +got):\n%s", diff)
	}
	entries, err := os.ReadDir(filepath.Join(dir, Dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("api/ holds %d entries, want 5 (no temporary files left)", len(entries))
	}
	got, err := LoadFlash(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("LoadFlash (-want +got):\n%s", diff)
	}
}

func TestLoadFlashErrors(t *testing.T) {
	a, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		mutate  func(dir string)
		wantErr string
	}{
		{"missing token", func(dir string) { os.Remove(filepath.Join(dir, Dir, TokenFile)) }, "token: no such file"},
		{"empty token", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, TokenFile), []byte("\n"), 0o600) }, "token is empty"},
		{"two tokens", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, TokenFile), []byte("a b\n"), 0o600) }, "more than one word"},
		{"garbage key", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, KeyFile), []byte("nope"), 0o600) }, "server certificate and key"},
		{"key of another cert", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, KeyFile), b.Key, 0o600) }, "private key does not match"},
		{"other CA", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, CACertFile), b.CACert, 0o644) }, "not signed by the CA"},
		{"other CA key", func(dir string) { os.WriteFile(filepath.Join(dir, Dir, CAKeyFile), b.CAKey, 0o600) }, "CA key does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := a.WriteFlash(dir); err != nil {
				t.Fatal(err)
			}
			tt.mutate(dir)
			_, err := LoadFlash(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadFlash error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnsureFlash(t *testing.T) {
	dir := t.TempDir()
	first, changed, err := EnsureFlash(dir, testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Error("first boot: changed = false, want generated")
	}
	again, changed, err := EnsureFlash(dir, testHosts, testIPs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("second boot with covered SANs: changed = true")
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("second boot credentials (-want +got):\n%s", diff)
	}

	// A new address (DHCP gave another lease): new server certificate,
	// same CA and token, so existing kubeconfigs keep working.
	moved := append([]net.IP{net.ParseIP("192.168.1.20")}, testIPs...)
	re, changed, err := EnsureFlash(dir, testHosts, moved)
	if err != nil {
		t.Fatal(err)
	}
	if !changed {
		t.Error("new address: changed = false, want a reissued certificate")
	}
	if re.Token != first.Token || string(re.CACert) != string(first.CACert) {
		t.Error("reissue changed the CA or the token")
	}
	if !re.Covers(testHosts, moved) {
		t.Error("reissued certificate does not cover the new address")
	}
	// The old names stay, in their order, the new ones follow.
	re2, _, err := EnsureFlash(dir, []string{"renamed"}, []net.IP{net.ParseIP("192.168.7.7")})
	if err != nil {
		t.Fatal(err)
	}
	hosts, ips := re2.sans()
	var ipStrings []string
	for _, ip := range ips {
		ipStrings = append(ipStrings, ip.String())
	}
	if diff := cmp.Diff([]string{"localhost", "board", "renamed"}, hosts); diff != "" {
		t.Errorf("hosts after a second move (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "10.0.2.15", "::1", "192.168.1.20", "192.168.7.7"}, ipStrings); diff != "" {
		t.Errorf("IPs after a second move (-want +got):\n%s", diff)
	}
	re = re2
	loaded, err := LoadFlash(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(re, loaded); diff != "" {
		t.Errorf("reissued credentials on flash (-want +got):\n%s", diff)
	}

	// A corrupt certificate is issued again from the CA, with the names
	// the board has now; the CA, key and token stay.
	if err := os.WriteFile(filepath.Join(dir, Dir, CertFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fixed, changed, err := EnsureFlash(dir, testHosts, testIPs)
	if err != nil {
		t.Fatalf("EnsureFlash with a corrupt certificate: %v", err)
	}
	if !changed || fixed.Token != first.Token || string(fixed.CACert) != string(first.CACert) || string(fixed.Key) != string(re.Key) {
		t.Errorf("corrupt certificate: changed %v, same token %v, same CA %v, same key %v; want changed and the rest kept",
			changed, fixed.Token == first.Token, string(fixed.CACert) == string(first.CACert), string(fixed.Key) == string(re.Key))
	}

	// A set without its token (a person deleted it, or the card lost it)
	// gets a new token and keeps its CA.
	half := t.TempDir()
	if err := first.WriteFlash(half); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(half, Dir, TokenFile))
	fresh, changed, err := EnsureFlash(half, testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || fresh.Token == first.Token || fresh.Token == "" {
		t.Error("a set without a token did not get a new one")
	}
	if string(fresh.CACert) != string(first.CACert) {
		t.Error("a set without a token got a new CA")
	}
}

func TestEnsureFlashWithoutCAKey(t *testing.T) {
	dir := t.TempDir()
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
	c.CAKey = nil
	if err := c.WriteFlash(dir); err != nil {
		t.Fatal(err)
	}
	got, changed, err := EnsureFlash(dir, []string{"elsewhere"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("without a CA key the certificate cannot be reissued, but changed = true")
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTLSConfigHandshake(t *testing.T) {
	c, err := Generate(testHosts, testIPs)
	if err != nil {
		t.Fatal(err)
	}
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
	pool, err := c.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS handshake with the CA as the only root: %v", err)
	}
	conn.Close()
}
