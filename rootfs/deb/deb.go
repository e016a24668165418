// Package deb fetches pinned Debian packages for a foreign architecture
// without installing them: apt-get download through a private apt
// configuration (its own sources and lists under the cache directory, so the
// host's apt sources are never edited), a sha256 check, and dpkg-deb -x.
//
// The private sources carry bookworm main and non-free-firmware (the
// Raspberry Pi boot firmware), bookworm-updates, bookworm-security and
// bookworm-backports.
package deb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/podboot/podboot/boards"
)

// DefaultSources is the private sources.list, one-line style.
const DefaultSources = `deb http://deb.debian.org/debian bookworm main non-free-firmware
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
`

// Fetcher downloads packages into CacheDir.
type Fetcher struct {
	// CacheDir holds the verified .deb files (name_version_arch.deb).
	CacheDir string
	// AptDir holds the private apt sources, lists and cache.
	AptDir string
	// Arch is the Debian architecture, e.g. arm64.
	Arch string
	// Sources is the sources.list; empty means DefaultSources.
	Sources string
	// Printf reports progress (cache hits, downloads).
	Printf func(format string, args ...any)
}

// Fetch returns the path of the verified .deb for p, downloading it when
// the cache does not hold it.
func (f *Fetcher) Fetch(ctx context.Context, p boards.Package) (string, error) {
	target := filepath.Join(f.CacheDir, fmt.Sprintf("%s_%s_%s.deb", p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), f.Arch))
	if err := Verify(target, p.SHA256); err == nil {
		f.printf("cache hit: %s", filepath.Base(target))
		return target, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		f.printf("cached %s is bad (%v): downloading again", filepath.Base(target), err)
	}
	if err := os.MkdirAll(f.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", p.Name, p.Version, err)
	}
	path, err := f.download(ctx, p)
	if err != nil {
		// The lists may be missing or stale: update once and retry.
		if uerr := f.update(ctx); uerr != nil {
			return "", fmt.Errorf("fetch %s=%s: %w (and %w)", p.Name, p.Version, err, uerr)
		}
		if path, err = f.download(ctx, p); err != nil {
			return "", fmt.Errorf("fetch %s=%s: %w (a pinned version disappears from Debian when a newer one replaces it: pin the new one in boards/)", p.Name, p.Version, err)
		}
	}
	defer os.RemoveAll(filepath.Dir(path))
	if err := Verify(path, p.SHA256); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", p.Name, p.Version, err)
	}
	if err := os.Rename(path, target); err != nil {
		return "", fmt.Errorf("fetch %s=%s: %w", p.Name, p.Version, err)
	}
	fi, _ := os.Stat(target)
	f.printf("downloaded %s (%s, sha256 ok)", filepath.Base(target), Size(fi.Size()))
	return target, nil
}

func (f *Fetcher) printf(format string, args ...any) {
	if f.Printf != nil {
		f.Printf(format, args...)
	}
}

// aptOptions point apt at the private configuration.
func (f *Fetcher) aptOptions() []string {
	return []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(f.AptDir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(f.AptDir, "sources.list.d"),
		"-o", "Dir::State::Lists=" + filepath.Join(f.AptDir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(f.AptDir, "cache"),
		"-o", "APT::Architecture=" + f.Arch,
		"-o", "APT::Architectures::=" + f.Arch,
		"-o", "Debug::NoLocking=1",
		"-o", "APT::Sandbox::User=" + currentUser(),
		"-q",
	}
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "nobody"
}

func (f *Fetcher) update(ctx context.Context) error {
	sources := f.Sources
	if sources == "" {
		sources = DefaultSources
	}
	for _, d := range []string{"lists/partial", "cache/archives/partial", "sources.list.d"} {
		if err := os.MkdirAll(filepath.Join(f.AptDir, d), 0o755); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(f.AptDir, "sources.list"), []byte(sources), 0o644); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	f.printf("apt-get update (private lists in %s: bookworm main non-free-firmware, -updates, -security, -backports; %s only)", f.AptDir, f.Arch)
	cmd := exec.CommandContext(ctx, "apt-get", append(f.aptOptions(), "update")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %w: %s", err, tail(out))
	}
	return nil
}

// download runs apt-get download in a fresh directory under the cache and
// returns the one .deb it wrote.
func (f *Fetcher) download(ctx context.Context, p boards.Package) (string, error) {
	if _, err := os.Stat(filepath.Join(f.AptDir, "sources.list")); err != nil {
		return "", fmt.Errorf("no private apt lists yet")
	}
	dir, err := os.MkdirTemp(f.CacheDir, ".download-")
	if err != nil {
		return "", err
	}
	f.printf("apt-get download %s=%s (%s)", p.Name, p.Version, f.Arch)
	cmd := exec.CommandContext(ctx, "apt-get", append(f.aptOptions(), "download", p.Name+"="+p.Version)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("apt-get download: %w: %s", err, tail(out))
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		os.RemoveAll(dir)
		return "", fmt.Errorf("apt-get download wrote %d .deb files, want 1", len(debs))
	}
	return debs[0], nil
}

// Verify checks path's sha256.
func Verify(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, want %s", filepath.Base(path), got, want)
	}
	return nil
}

// Extract unpacks the .deb's data into dir (dpkg-deb -x), once: a marker
// file records a finished extraction so an interrupted one is redone.
func Extract(ctx context.Context, deb, dir string) (cached bool, err error) {
	marker := filepath.Join(dir, ".extracted")
	if b, err := os.ReadFile(marker); err == nil && string(b) == filepath.Base(deb) {
		return true, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("extract %s: %w", deb, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("extract %s: %w", deb, err)
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, dir).CombinedOutput(); err != nil {
		return false, fmt.Errorf("extract %s: dpkg-deb -x: %w: %s", deb, err, tail(out))
	}
	return false, os.WriteFile(marker, []byte(filepath.Base(deb)), 0o644)
}

func tail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 800 {
		s = "..." + s[len(s)-800:]
	}
	return s
}

// Size formats a byte count for people: 1.5 MiB.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
