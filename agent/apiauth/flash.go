package apiauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/podboot/podboot/internal/atomicfile"
)

// Files under <flash>/api/.
const (
	Dir        = "api"
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
	TokenFile  = "token"
)

const (
	// tempDirPrefix names the directory a new set is written into before
	// it is renamed to api/, beside it on the same filesystem. A power cut
	// can leave one behind; Ensure removes it.
	tempDirPrefix = ".api-"
	// renewBefore is how long before it expires a server certificate is
	// issued again, as k3s's dynamiclistener does (30 days).
	renewBefore = 30 * 24 * time.Hour
	// maxSANs bounds the names, and apart the addresses, a server
	// certificate carries: earlier ones are kept (they cost nothing and
	// may still be dialled) until the oldest must make room, so a board
	// that gets a new DHCP lease every week does not grow its certificate
	// for ever.
	maxSANs = 32
)

// credentialFiles are the set's files.
func credentialFiles() []string {
	return []string{CACertFile, CAKeyFile, CertFile, KeyFile, TokenFile}
}

// flashOps are the durable steps Ensure and WriteFlash take. cut, when
// set, is called before each step with its name and an error stops there,
// as a power cut would: tests cut at every step in turn.
type flashOps struct {
	cut func(step string) error
}

func (o flashOps) step(name string) error {
	if o.cut == nil {
		return nil
	}
	return o.cut(name)
}

// write replaces path durably (internal/atomicfile: temporary file,
// fsync, rename, directory fsync).
func (o flashOps) write(path string, data []byte, perm os.FileMode) error {
	if err := o.step("write " + path); err != nil {
		return err
	}
	return atomicfile.Write(path, data, perm)
}

func (o flashOps) removeAll(path string) error {
	if err := o.step("remove " + path); err != nil {
		return err
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("remove %q: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// WriteFlash writes a new credentials set to dir/api/ as one unit: the
// files go into a temporary directory beside it, each synced, and the
// directory is renamed to api/ and its parent synced, so a power cut
// leaves either no set or the whole set. Keys and token are readable by
// the owner only. It does not replace a set already there: clients may
// trust its CA.
func (c *Credentials) WriteFlash(dir string) error {
	return c.writeFlash(dir, flashOps{})
}

func (c *Credentials) writeFlash(dir string, ops flashOps) error {
	api := filepath.Join(dir, Dir)
	present, err := presentFiles(api)
	if err != nil {
		return err
	}
	if len(present) > 0 {
		return fmt.Errorf("write API credentials %q: it already holds %s; a new set does not replace them (clients may trust that CA)", api, strings.Join(present, ", "))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	if err := ops.step("create a temporary directory in " + dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, tempDirPrefix)
	if err != nil {
		return fmt.Errorf("write API credentials: %w", err)
	}
	files := []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CACertFile, c.CACert, 0o644},
		{CAKeyFile, c.CAKey, 0o600},
		{CertFile, c.Cert, 0o644},
		{KeyFile, c.Key, 0o600},
		{TokenFile, []byte(c.Token + "\n"), 0o600},
	}
	for _, f := range files {
		if f.name == CAKeyFile && len(f.data) == 0 {
			continue
		}
		if err := ops.write(filepath.Join(tmp, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("write API credentials: %w", err)
		}
	}
	if err := ops.step("rename " + tmp + " to " + api); err != nil {
		return err
	}
	// rename(2) replaces api/ only when it is an empty directory: one
	// holding anything else is refused, never overwritten.
	if err := os.Rename(tmp, api); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("write API credentials: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// LoadFlash reads dir/api/ and checks that the pieces fit. ca.key is
// optional; the others are required. It repairs nothing: podagent uses
// Ensure.
func LoadFlash(dir string) (*Credentials, error) {
	api := filepath.Join(dir, Dir)
	files, err := readFiles(api)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{CACertFile, CertFile, KeyFile, TokenFile} {
		if files[name] == nil {
			return nil, fmt.Errorf("read API credentials: open %s: %w", filepath.Join(api, name), syscall.ENOENT)
		}
	}
	c := &Credentials{CACert: files[CACertFile], CAKey: files[CAKeyFile], Cert: files[CertFile], Key: files[KeyFile]}
	if c.Token, err = parseToken(files[TokenFile]); err != nil {
		return nil, fmt.Errorf("API credentials %q: %w", filepath.Join(api, TokenFile), err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("API credentials %q: %w", api, err)
	}
	return c, nil
}

// Report says what Ensure found and changed, for the log.
type Report struct {
	// Generated: there was no set, so a new CA, token, key and
	// certificate were made (a first boot).
	Generated bool
	// NewToken: the token was missing or unreadable and a new one was
	// made; kubeconfigs with the old one are refused until updated.
	NewToken bool
	// NewKey: the server key was missing or unreadable and a new one was
	// made (the certificate with it).
	NewKey bool
	// Reissued: a new server certificate was issued from the CA.
	Reissued bool
	// Why lists the reasons for a new token, key or certificate.
	Why []string
	// Removed lists what interrupted writes had left and was removed.
	Removed []string
	// Warnings are faults that do not stop HTTPS, each with what a person
	// can do about it.
	Warnings []string
}

// Wrote reports whether Ensure wrote to the flash.
func (r Report) Wrote() bool {
	return r.Generated || r.NewToken || r.NewKey || r.Reissued || len(r.Removed) > 0
}

// CAError is Ensure's error when the CA certificate is missing or corrupt
// while other credentials are there. Clients trust that CA, so it is not
// replaced: a person restores it or starts over.
type CAError struct {
	Dir string // the api/ directory
	Err error
}

func (e *CAError) Error() string {
	return fmt.Sprintf("API credentials %q: CA certificate %s: %v; kubeconfigs trust that CA, so it is not replaced. "+
		"To fix: restore %s and %s into %s from a backup or from the image builder's cache (.cache/credentials/<board>/api/ in the checkout that built the image) and reboot; "+
		"or, to start over with a new CA and token, delete %s and reboot, then replace every kubeconfig with one made from the new %s and %s",
		e.Dir, CACertFile, e.Err, CACertFile, CAKeyFile, e.Dir, e.Dir, CACertFile, TokenFile)
}

func (e *CAError) Unwrap() error { return e.Err }

// Ensure makes dir/api/ a usable set for hosts and ips and returns it.
//
//   - No set at all (a first boot): a new one, written as one unit.
//   - A server certificate that does not name every host and IP: a new
//     one from the CA for the old names and the new ones; the server key,
//     CA and token stay.
//   - A torn or corrupt set with an intact CA (a key that is not the
//     certificate's, a truncated or missing file, a certificate of
//     another CA, an expiring one): the certificate, and the key or the
//     token if they are lost, are made again; the CA and what is intact
//     stay. Temporary files and directories of interrupted writes are
//     removed.
//   - A missing or corrupt CA certificate: a *CAError, and nothing
//     written. The CA is never replaced.
//
// Only the files that change are written, each atomically and durably,
// the key before the certificate: a power cut between them leaves a
// mismatch the next call repairs. When the repaired set is usable but
// could not be written (a read-only flash), Ensure returns it with the
// write error: it serves until the next boot tries again.
func Ensure(dir string, hosts []string, ips []net.IP) (*Credentials, Report, error) {
	return ensure(dir, hosts, ips, flashOps{})
}

// EnsureFlash is Ensure for callers that only need to know whether
// anything was written (the image builder's credentials cache).
func EnsureFlash(dir string, hosts []string, ips []net.IP) (c *Credentials, changed bool, err error) {
	c, r, err := Ensure(dir, hosts, ips)
	if err != nil {
		return nil, false, err
	}
	return c, r.Wrote(), nil
}

func ensure(dir string, hosts []string, ips []net.IP, ops flashOps) (*Credentials, Report, error) {
	api := filepath.Join(dir, Dir)
	var r Report
	// Every certificate names the loopbacks: a cached set from before
	// they all were gets them where it is kept (the image builder's
	// cache), not on each board's flash at its first boot.
	lh, lip := loopbacks()
	hosts = append(slices.Clone(hosts), lh...)
	ips = append(slices.Clone(ips), lip...)
	if err := removeLeftovers(dir, ops, &r); err != nil {
		// A read-only flash cannot be tidied; what is there may still serve.
		r.Warnings = append(r.Warnings, err.Error())
	}
	files, err := readFiles(api)
	if err != nil {
		return nil, r, err
	}
	if !slices.ContainsFunc(credentialFiles(), func(name string) bool { return files[name] != nil }) {
		c, err := Generate(hosts, ips)
		if err != nil {
			return nil, r, err
		}
		if err := c.writeFlash(dir, ops); err != nil {
			return nil, r, err
		}
		r.Generated = true
		return c, r, nil
	}

	ca, err := parseCA(files[CACertFile])
	if err != nil {
		return nil, r, &CAError{Dir: api, Err: err}
	}
	c := &Credentials{CACert: files[CACertFile]}
	if files[CAKeyFile] != nil {
		if err := checkCAKey(files[CAKeyFile], ca); err != nil {
			r.Warnings = append(r.Warnings, fmt.Sprintf("%s: %v: new names and addresses cannot be added to the server certificate, nor a broken one replaced; restore %s (the key of %s) from a backup or the image builder's cache",
				filepath.Join(api, CAKeyFile), err, CAKeyFile, CACertFile))
		} else {
			c.CAKey = files[CAKeyFile]
		}
	}

	token, tokenErr := parseToken(files[TokenFile])
	if tokenErr != nil {
		if c.Token, err = newToken(); err != nil {
			return nil, r, err
		}
		r.NewToken = true
		r.Why = append(r.Why, fmt.Sprintf("%s: %v", TokenFile, tokenErr))
	} else {
		c.Token = token
	}

	// The server key stays as long as it parses: a certificate can always
	// be issued again for it, so no torn state outlives the next start.
	key, keyErr := parseKey(files[KeyFile])
	if keyErr == nil {
		c.Key = files[KeyFile]
	} else {
		key = nil
		r.NewKey = true
		r.Why = append(r.Why, fmt.Sprintf("%s: %v", KeyFile, keyErr))
	}
	var oldHosts []string
	var oldIPs []net.IP
	cert, certErr := checkServerCert(files[CertFile], ca, key)
	if cert != nil {
		// Its names were the board's, whatever else is wrong with it.
		oldHosts, oldIPs = cert.DNSNames, cert.IPAddresses
	}
	if certErr == nil {
		c.Cert = files[CertFile]
		if keyErr == nil && c.Covers(hosts, ips) {
			return finish(api, c, r, ops)
		}
	} else if keyErr == nil {
		r.Why = append(r.Why, fmt.Sprintf("%s: %v", CertFile, certErr))
	}

	if len(c.CAKey) == 0 {
		if certErr == nil && keyErr == nil {
			// Served as it is, without the new names: the CA key was taken
			// off the flash (or is broken, warned above).
			return finish(api, c, r, ops)
		}
		broken := fmt.Sprintf("%s: %v", CertFile, certErr)
		if keyErr != nil {
			broken = fmt.Sprintf("%s: %v", KeyFile, keyErr)
		}
		return nil, r, fmt.Errorf("API credentials %q: %s, and without a usable %s no new server certificate can be issued; restore %s and %s, or %s, from a backup or the image builder's cache (.cache/credentials/<board>/api/)",
			api, broken, CAKeyFile, CertFile, KeyFile, CAKeyFile)
	}
	if certErr == nil && keyErr == nil {
		r.Why = append(r.Why, "new names or addresses")
	}
	if err := c.Reissue(keepSANs(oldHosts, hosts, strings.EqualFold), keepSANs(oldIPs, ips, net.IP.Equal)); err != nil {
		return nil, r, err
	}
	r.Reissued = true
	return finish(api, c, r, ops)
}

// finish checks that the set fits and writes what was made again; a set
// that fits but could not be written is returned with the error.
func finish(api string, c *Credentials, r Report, ops flashOps) (*Credentials, Report, error) {
	if err := c.Validate(); err != nil {
		return nil, r, fmt.Errorf("API credentials %q: %w", api, err)
	}
	if err := writeRepairs(api, c, r, ops); err != nil {
		return c, r, err
	}
	return c, r, nil
}

// writeRepairs writes what Ensure made again, in an order that keeps every
// intermediate state repairable: the token (independent), then the key,
// then the certificate.
func writeRepairs(api string, c *Credentials, r Report, ops flashOps) error {
	var files []struct {
		name string
		data []byte
		perm os.FileMode
	}
	add := func(ok bool, name string, data []byte, perm os.FileMode) {
		if ok {
			files = append(files, struct {
				name string
				data []byte
				perm os.FileMode
			}{name, data, perm})
		}
	}
	add(r.NewToken, TokenFile, []byte(c.Token+"\n"), 0o600)
	add(r.NewKey, KeyFile, c.Key, 0o600)
	add(r.Reissued, CertFile, c.Cert, 0o644)
	for _, f := range files {
		if err := ops.write(filepath.Join(api, f.name), f.data, f.perm); err != nil {
			return fmt.Errorf("write repaired API credentials: %w", err)
		}
	}
	return nil
}

// removeLeftovers removes what interrupted writes leave: temporary
// directories of a new set beside api/, and atomic writes' temporary files
// (".tls.crt123…", the older ".tls.crt.tmp-…") in it.
func removeLeftovers(dir string, ops flashOps, r *Report) error {
	var leftovers []string
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("look for leftovers in %q: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), tempDirPrefix) {
			leftovers = append(leftovers, filepath.Join(dir, e.Name()))
		}
	}
	api := filepath.Join(dir, Dir)
	entries, err = os.ReadDir(api)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("look for leftovers in %q: %w", api, err)
	}
	for _, e := range entries {
		for _, name := range credentialFiles() {
			if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "."+name) {
				leftovers = append(leftovers, filepath.Join(api, e.Name()))
				break
			}
		}
	}
	for _, p := range leftovers {
		if err := ops.removeAll(p); err != nil {
			return fmt.Errorf("remove leftover of an interrupted write: %w", err)
		}
		r.Removed = append(r.Removed, p)
	}
	return nil
}

// readFiles reads the set's files; a missing one is nil, an empty one is
// empty but not nil.
func readFiles(api string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range credentialFiles() {
		b, err := os.ReadFile(filepath.Join(api, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read API credentials: %w", err)
		}
		if b == nil {
			b = []byte{}
		}
		files[name] = b
	}
	return files, nil
}

func presentFiles(api string) ([]string, error) {
	files, err := readFiles(api)
	if err != nil {
		return nil, err
	}
	var present []string
	for _, name := range credentialFiles() {
		if files[name] != nil {
			present = append(present, name)
		}
	}
	return present, nil
}

func parseToken(b []byte) (string, error) {
	switch t := strings.TrimSpace(string(b)); {
	case b == nil:
		return "", fs.ErrNotExist
	case t == "":
		return "", errors.New("token is empty")
	case strings.ContainsAny(t, " \t\r\n"):
		return "", errors.New("token file holds more than one word")
	default:
		return t, nil
	}
}

func parseCA(b []byte) (*x509.Certificate, error) {
	if b == nil {
		return nil, fs.ErrNotExist
	}
	ca, err := parseCert(b)
	if err != nil {
		return nil, err
	}
	if !ca.IsCA {
		return nil, errors.New("not a CA certificate")
	}
	return ca, nil
}

func checkCAKey(b []byte, ca *x509.Certificate) error {
	k, err := parseKey(b)
	if err != nil {
		return err
	}
	if pub, ok := k.Public().(*ecdsa.PublicKey); !ok || !pub.Equal(ca.PublicKey) {
		return fmt.Errorf("does not match %s", CACertFile)
	}
	return nil
}

// checkServerCert parses the server certificate and says what is wrong
// with it for key and ca; the certificate is returned whenever it parses.
func checkServerCert(b []byte, ca *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	if b == nil {
		return nil, fs.ErrNotExist
	}
	cert, err := parseCert(b)
	if err != nil {
		return nil, err
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		// Not ours: its names are not trusted either.
		return nil, fmt.Errorf("not signed by the CA: %w", err)
	}
	if key != nil {
		if pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
			return cert, fmt.Errorf("does not match %s", KeyFile)
		}
	}
	if time.Now().Add(renewBefore).After(cert.NotAfter) {
		return cert, fmt.Errorf("expires %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// keepSANs is what a new certificate names: every entry wanted now, and
// the earlier certificate's others (an address it had may still be
// dialled) in their order, dropping the oldest beyond maxSANs.
func keepSANs[T any](old, want []T, eq func(a, b T) bool) []T {
	wanted := func(o T) bool { return slices.ContainsFunc(want, func(w T) bool { return eq(o, w) }) }
	earlier := 0
	for _, o := range old {
		if !wanted(o) {
			earlier++
		}
	}
	drop := max(0, earlier-max(0, maxSANs-len(want)))
	var out []T
	for _, o := range old {
		if !wanted(o) && drop > 0 {
			drop--
			continue
		}
		out = append(out, o)
	}
	for _, w := range want {
		if !slices.ContainsFunc(out, func(o T) bool { return eq(o, w) }) {
			out = append(out, w)
		}
	}
	return out
}
