package apiauth

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
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

// WriteFlash writes the credentials to dir/api/, each file atomically;
// keys and token are readable by the owner only. The token is written
// last, so a half-written set is seen as missing, not as usable.
func (c *Credentials) WriteFlash(dir string) error {
	api := filepath.Join(dir, Dir)
	if err := os.MkdirAll(api, 0o700); err != nil {
		return fmt.Errorf("create credentials directory %q: %w", api, err)
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
		if err := WriteFileAtomic(filepath.Join(api, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// LoadFlash reads dir/api/ and checks that the pieces fit. ca.key is
// optional; the others are required.
func LoadFlash(dir string) (*Credentials, error) {
	api := filepath.Join(dir, Dir)
	read := func(name string, optional bool) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(api, name))
		if optional && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read API credentials: %w", err)
		}
		return b, nil
	}
	var c Credentials
	var token []byte
	var err error
	for _, f := range []struct {
		name     string
		dst      *[]byte
		optional bool
	}{
		{CACertFile, &c.CACert, false},
		{CAKeyFile, &c.CAKey, true},
		{CertFile, &c.Cert, false},
		{KeyFile, &c.Key, false},
		{TokenFile, &token, false},
	} {
		if *f.dst, err = read(f.name, f.optional); err != nil {
			return nil, err
		}
	}
	c.Token = strings.TrimSpace(string(token))
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return nil, fmt.Errorf("API credentials %q: token file holds more than one word", filepath.Join(api, TokenFile))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("API credentials %q: %w", api, err)
	}
	return &c, nil
}

// EnsureFlash loads dir/api/, or generates and writes new credentials when
// any required file is missing (a first boot). When the loaded server
// certificate does not name every host and IP and the CA key is there, it
// issues a new server certificate for the old names and the new ones (the
// board's address changed) and keeps the CA and token. changed reports whether anything was written.
// Credentials that exist but are corrupt are an error, not replaced: the
// kubeconfigs that trust them would silently stop working.
func EnsureFlash(dir string, hosts []string, ips []net.IP) (c *Credentials, changed bool, err error) {
	missing, err := anyMissing(dir)
	if err != nil {
		return nil, false, err
	}
	if missing {
		c, err := Generate(hosts, ips)
		if err != nil {
			return nil, false, err
		}
		if err := c.WriteFlash(dir); err != nil {
			return nil, false, err
		}
		return c, true, nil
	}
	c, err = LoadFlash(dir)
	if err != nil {
		return nil, false, err
	}
	if c.Covers(hosts, ips) || len(c.CAKey) == 0 {
		return c, false, nil
	}
	// Keep the names already there: the builder's (localhost, 10.0.2.15)
	// and earlier addresses cost nothing and may still be in use.
	oldHosts, oldIPs := c.sans()
	if err := c.Reissue(append(oldHosts, hosts...), append(oldIPs, ips...)); err != nil {
		return nil, false, err
	}
	if err := c.WriteFlash(dir); err != nil {
		return nil, false, err
	}
	return c, true, nil
}

func anyMissing(dir string) (bool, error) {
	for _, name := range []string{CACertFile, CertFile, KeyFile, TokenFile} {
		p := filepath.Join(dir, Dir, name)
		_, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("check API credentials: %w", err)
		}
	}
	return false, nil
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so a power cut leaves
// either the old file or the new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %q: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
