package trial_test

import (
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/podboot/podboot/agent/ota/trial"
	"github.com/podboot/podboot/agent/ota/trial/crashfs"
)

const otaDir = "/flash/ota"

// now is the fixed clock of every test.
func now() time.Time { return time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC) }

// genFiles is what a complete generation directory holds (crashfs.Tree's
// form); fill writes it.
func genFiles(gen uint64) map[string]string {
	return map[string]string{
		"statement.json": fmt.Sprintf(`{"generation":%d}`, gen),
		"pods":           "dir",
		"pods/db.yaml":   fmt.Sprintf("kind: Pod # db of generation %d\n", gen),
		"pods/web.yaml":  fmt.Sprintf("kind: Pod # web of generation %d\n", gen),
		"images":         "dir",
		"images/app.tar": strings.Repeat(fmt.Sprintf("layer of generation %d;", gen), 10),
	}
}

func fill(gen uint64) func(w trial.FS, dir string) error {
	return func(w trial.FS, dir string) error {
		for _, d := range []string{"pods", "images"} {
			if err := w.MkdirAll(path.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		for name, content := range genFiles(gen) {
			if content == "dir" {
				continue
			}
			if err := w.WriteFile(path.Join(dir, name), strings.NewReader(content), 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

func open(t *testing.T, f *crashfs.FS) *trial.Machine {
	t.Helper()
	m, err := trial.Open(f, otaDir, now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m
}

func stageBegin(m *trial.Machine, gen uint64) error {
	if err := m.Stage(gen, fill(gen)); err != nil {
		return err
	}
	return m.Begin(gen)
}

// commit runs generation gen through a whole successful trial.
func commit(m *trial.Machine, gen uint64) error {
	if err := stageBegin(m, gen); err != nil {
		return err
	}
	if _, err := m.StartAttempt(); err != nil {
		return err
	}
	return m.Commit()
}

// steps runs each step in turn, stopping at the first error.
func steps(fns ...func(m *trial.Machine) error) func(m *trial.Machine) error {
	return func(m *trial.Machine) error {
		for _, fn := range fns {
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	}
}

func committed(gen uint64) func(m *trial.Machine) error {
	return func(m *trial.Machine) error { return commit(m, gen) }
}

func trying(gen uint64, attempts int) func(m *trial.Machine) error {
	return func(m *trial.Machine) error {
		if err := stageBegin(m, gen); err != nil {
			return err
		}
		for range attempts {
			if _, err := m.StartAttempt(); err != nil {
				return err
			}
		}
		return nil
	}
}

func rolledBack(reason string) func(m *trial.Machine) error {
	return func(m *trial.Machine) error { return m.Rollback(reason) }
}
