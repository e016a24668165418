package apiauth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/podboot/podboot/internal/atomicfile"
)

// ReadOnlyTokenFile, beside the admin token in <flash>/api/, is the
// bearer token of the read-only user: dashboards, and the hypervisor
// host's status readers over vsock (which has no TLS, so no client
// certificates). It is not part of the set Ensure writes as one unit:
// podagent adds it to a set that lacks it (EnsureReadOnlyToken), so boards
// whose set predates it get one without a new CA or admin token.
const ReadOnlyTokenFile = "read-only-token"

// Tokens are the bearer tokens on the flash.
type Tokens struct {
	Admin    string // <flash>/api/token; "" when it is missing or unreadable
	ReadOnly string // <flash>/api/read-only-token; "" likewise
}

// LoadTokens reads dir/api/'s tokens without repairing anything: a missing
// or unusable one is "" (that credential is then refused), with the
// problems joined in the error. It serves a listener that needs the tokens
// when Ensure has not run or failed (vsock with HTTPS off, or a lost CA).
func LoadTokens(dir string) (Tokens, error) {
	api := filepath.Join(dir, Dir)
	var (
		t    Tokens
		errs []error
	)
	for _, f := range []struct {
		name string
		dst  *string
	}{{TokenFile, &t.Admin}, {ReadOnlyTokenFile, &t.ReadOnly}} {
		b, err := os.ReadFile(filepath.Join(api, f.name))
		if err == nil {
			*f.dst, err = parseToken(b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("API token %q: %w", filepath.Join(api, f.name), err))
		}
	}
	return t, errors.Join(errs...)
}

// EnsureReadOnlyToken returns dir/api/'s read-only token, making a new one
// when it is missing, empty or more than one word (written atomically,
// owner-only, after removing what an interrupted write left). created
// says a new one was made; when it could not be written (a read-only
// flash) it is returned with the error, to serve until the next start.
// The api/ directory must exist: Ensure makes it.
func EnsureReadOnlyToken(dir string) (token string, created bool, err error) {
	api := filepath.Join(dir, Dir)
	path := filepath.Join(api, ReadOnlyTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if token, err = parseToken(b); err == nil {
			return token, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read API read-only token: %w", err)
	}
	if _, err := os.Stat(api); err != nil {
		return "", false, fmt.Errorf("make API read-only token: %w", err)
	}
	if token, err = newToken(); err != nil {
		return "", false, err
	}
	if err := removeTokenLeftovers(api); err != nil {
		return token, true, err
	}
	if err := atomicfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return token, true, fmt.Errorf("write API read-only token: %w", err)
	}
	return token, true, nil
}

// removeTokenLeftovers removes the temporary files of an interrupted
// write of the read-only token (".read-only-token123…").
func removeTokenLeftovers(api string) error {
	entries, err := os.ReadDir(api)
	if err != nil {
		return fmt.Errorf("look for leftovers in %q: %w", api, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "."+ReadOnlyTokenFile) {
			if err := os.Remove(filepath.Join(api, e.Name())); err != nil {
				return fmt.Errorf("remove leftover of an interrupted write: %w", err)
			}
		}
	}
	return nil
}
