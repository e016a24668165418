package podagent

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/runtime/fake"
)

func TestImportGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := fake.New()
		rt.AddImage("busybox:1.36")
		progress := newImportProgress()
		g := importGate{Runtime: rt, progress: progress}
		ctx := t.Context()

		// Present: no wait for the imports.
		if _, err := g.EnsureImage(ctx, "busybox:1.36", corev1.PullIfNotPresent); err != nil {
			t.Fatalf("present image: %v", err)
		}

		// Absent: waits for the archive that brings it.
		type result struct {
			img runtime.Image
			err error
		}
		done := make(chan result, 1)
		go func() {
			img, err := g.EnsureImage(ctx, "nginx:1.29", corev1.PullNever)
			done <- result{img, err}
		}()
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("absent image resolved before the imports finished: %+v", r)
		default:
		}
		time.Sleep(3 * time.Second) // an import under TCG
		progress.archiveDone()      // an archive without it
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("resolved after an archive without the image: %+v", r)
		default:
		}
		rt.AddImage("nginx:1.29")
		progress.archiveDone()
		if r := <-done; r.err != nil {
			t.Fatalf("after its archive: %v", r.err)
		}

		// A pod whose image no archive has waits for the last one, then
		// the policy decides.
		go func() {
			_, err := g.EnsureImage(ctx, "redis:7", corev1.PullNever)
			done <- result{err: err}
		}()
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("resolved before the imports finished: %+v", r)
		default:
		}
		progress.finish()
		if r := <-done; !errors.Is(r.err, runtime.ErrImageNeverPull) {
			t.Fatalf("after the imports: %v, want ErrImageNeverPull", r.err)
		}

		// After the imports, a missing image fails as the policy says.
		if _, err := g.EnsureImage(ctx, "redis:7", corev1.PullNever); !errors.Is(err, runtime.ErrImageNeverPull) {
			t.Errorf("missing image after the imports: %v, want ErrImageNeverPull", err)
		}
	})
}

func TestImportGateCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := importGate{Runtime: fake.New(), progress: newImportProgress()}
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(time.Second); cancel() }()
		if _, err := g.EnsureImage(ctx, "nginx:1.29", corev1.PullIfNotPresent); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait: %v, want context.Canceled", err)
		}
	})
}
