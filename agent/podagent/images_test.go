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
		imported := make(chan struct{})
		g := importGate{Runtime: rt, imported: imported}
		ctx := t.Context()

		// Present: no wait for the imports.
		if _, err := g.EnsureImage(ctx, "busybox:1.36", corev1.PullIfNotPresent); err != nil {
			t.Fatalf("present image: %v", err)
		}

		// Absent: waits for the imports, then resolves what they brought.
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
		rt.AddImage("nginx:1.29")
		close(imported)
		if r := <-done; r.err != nil {
			t.Fatalf("after the imports: %v", r.err)
		}

		// After the imports, a missing image fails as the policy says.
		if _, err := g.EnsureImage(ctx, "redis:7", corev1.PullNever); !errors.Is(err, runtime.ErrImageNeverPull) {
			t.Errorf("missing image after the imports: %v, want ErrImageNeverPull", err)
		}
	})
}

func TestImportGateCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := importGate{Runtime: fake.New(), imported: make(chan struct{})}
		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(time.Second); cancel() }()
		if _, err := g.EnsureImage(ctx, "nginx:1.29", corev1.PullIfNotPresent); !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled wait: %v, want context.Canceled", err)
		}
	})
}
