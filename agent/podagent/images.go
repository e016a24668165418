package podagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// archiveImporter is the part of the runtime that imports image archives.
type archiveImporter interface {
	ImportArchive(ctx context.Context, path string) ([]string, error)
}

// imageImporter imports every archive in the flash's images/ directory at
// start and each one added later, so an air-gapped board needs no registry.
type imageImporter struct {
	dir string
	rt  archiveImporter
	log *slog.Logger
	// progress, when set, hears of each archive imported.
	progress *importProgress
	// done remembers what was imported (by name, size and mtime) so a
	// resync does not import the same archive again.
	done map[string]string
}

// importAll imports the archives not imported yet and returns how many.
func (im *imageImporter) importAll(ctx context.Context) (imported int) {
	entries, err := os.ReadDir(im.dir)
	if err != nil {
		if !os.IsNotExist(err) {
			im.log.Error("read images directory", "dir", im.dir, "err", err)
		}
		return 0
	}
	if im.done == nil {
		im.done = map[string]string{}
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || !isArchive(e.Name()) {
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(im.dir, name)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		stamp := fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
		if im.done[name] == stamp {
			continue
		}
		start := time.Now()
		refs, err := im.rt.ImportArchive(ctx, path)
		if err != nil {
			// A bad archive is reported and skipped; the others still import.
			im.log.Error("import image archive", "file", path, "err", err)
			im.done[name] = stamp
			continue
		}
		im.done[name] = stamp
		imported++
		if im.progress != nil {
			im.progress.archiveDone()
		}
		im.log.Info("imported image archive", "file", path, "images", refs, "duration", time.Since(start).Round(time.Millisecond))
	}
	return imported
}

func isArchive(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tar.gz") || strings.HasSuffix(name, ".tgz"))
}

// watch re-imports when an archive is added or replaced. Writes are
// debounced: an archive is imported once it has been quiet for a second.
func (im *imageImporter) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		im.log.Error("watch images directory", "err", err)
		<-ctx.Done()
		return nil
	}
	defer w.Close()
	if err := w.Add(im.dir); err != nil {
		im.log.Info("images directory not watched", "dir", im.dir, "err", err)
	}
	var timer <-chan time.Time
	resync := time.NewTicker(time.Minute)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if isArchive(filepath.Base(ev.Name)) {
				timer = time.After(time.Second)
			}
		case err := <-w.Errors:
			im.log.Warn("images directory watch", "err", err)
		case <-timer:
			im.importAll(ctx)
		case <-resync.C:
			if len(w.WatchList()) == 0 {
				_ = w.Add(im.dir)
			}
			im.importAll(ctx)
		}
	}
}

// importProgress tells waiters about the boot's import of the flash's
// archives: step is closed and replaced after each archive, done is closed
// when all are in.
type importProgress struct {
	mu   sync.Mutex
	step chan struct{}
	done chan struct{}
}

func newImportProgress() *importProgress {
	return &importProgress{step: make(chan struct{}), done: make(chan struct{})}
}

func (p *importProgress) archiveDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.step)
	p.step = make(chan struct{})
}

func (p *importProgress) finish() { close(p.done) }

func (p *importProgress) channels() (step, done <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.step, p.done
}

// importGate holds back image resolution while the boot imports the
// flash's archives, so the API and the manifests need not wait for them: a
// pod whose image is present starts at once, one whose image may still come
// from an archive waits for each archive in turn rather than race a pull
// that an air-gapped board would fail. After the imports, the pull policy
// decides as usual.
type importGate struct {
	runtime.Runtime
	progress *importProgress
}

func (g importGate) EnsureImage(ctx context.Context, image string, policy corev1.PullPolicy) (runtime.Image, error) {
	for {
		// Taken before looking, so an archive finishing in between is not missed.
		step, done := g.progress.channels()
		select {
		case <-done:
			return g.Runtime.EnsureImage(ctx, image, policy)
		default:
		}
		if policy != corev1.PullAlways {
			if img, err := g.Runtime.EnsureImage(ctx, image, corev1.PullNever); err == nil {
				return img, nil
			}
		}
		select {
		case <-step:
		case <-done:
		case <-ctx.Done():
			return runtime.Image{}, ctx.Err()
		}
	}
}
