package podbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// runPodman runs the same rounds through podman kube play: warm-up, pods one
// at a time, pods at once (concurrent kube plays), each pod checked to run.
// The benchmark's podman pods are removed whatever happens.
func (c Config) runPodman(ctx context.Context, archive string, res *Results) (err error) {
	p := *c.Podman
	if _, err := exec.LookPath(p.Bin); err != nil {
		return fmt.Errorf("podman: %w", err)
	}
	out, err := os.Create(filepath.Join(c.Work, "podman.log"))
	if err != nil {
		return fmt.Errorf("podman: %w", err)
	}
	defer out.Close()
	p.Output = out
	if err := p.RemovePods(ctx, podPrefix); err != nil {
		return fmt.Errorf("podman: remove a previous run's pods: %w", err)
	}
	defer func() {
		// Also when ctx has ended: a benchmark leaves nothing running.
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, p.RemovePods(cleanCtx, podPrefix))
	}()
	if err := p.Load(ctx, archive); err != nil {
		return err
	}
	dir := filepath.Join(c.Work, "podman")
	write := func(specs []PodSpec) ([]string, error) {
		paths := make([]string, len(specs))
		for i, spec := range specs {
			paths[i] = filepath.Join(dir, spec.Name+".yaml")
			if err := os.WriteFile(paths[i], spec.Manifest(), 0o644); err != nil {
				return nil, fmt.Errorf("podman: write manifest: %w", err)
			}
		}
		return paths, nil
	}
	check := func(specs []PodSpec) error {
		pods, err := p.Pods(ctx, podPrefix)
		if err != nil {
			return err
		}
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.Name
		}
		return CheckRunning(pods, names)
	}

	// The first kube play on a host builds podman's pause image.
	warm := []PodSpec{c.pod("warmup")}
	paths, err := write(warm)
	if err != nil {
		return err
	}
	if _, err := p.Play(ctx, paths[0]); err != nil {
		return fmt.Errorf("podman warm-up: %w", err)
	}
	if err := errors.Join(check(warm), p.RemovePods(ctx, podPrefix)); err != nil {
		return fmt.Errorf("podman warm-up: %w", err)
	}

	seq := c.pods("seq", c.Sequential)
	if paths, err = write(seq); err != nil {
		return err
	}
	var lat []time.Duration
	for i, path := range paths {
		took, err := p.Play(ctx, path)
		if err != nil {
			res.PodmanSeq = res.record("podman-seq", lat)
			return err
		}
		if err := check(seq[i : i+1]); err != nil {
			return err
		}
		lat = append(lat, took)
	}
	res.PodmanSeq = res.record("podman-seq", lat)
	c.Log.Info("podman: started pods one at a time", "summary", res.PodmanSeq)
	if err := p.RemovePods(ctx, podPrefix); err != nil {
		return err
	}

	burst := c.pods("burst", c.Burst)
	if paths, err = write(burst); err != nil {
		return err
	}
	lat = make([]time.Duration, len(paths))
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { lat[i], errs[i] = p.Play(ctx, path) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := check(burst); err != nil {
		return err
	}
	res.PodmanBurst = res.record("podman-burst", lat)
	c.Log.Info("podman: started pods at once", "summary", res.PodmanBurst)
	return p.RemovePods(ctx, podPrefix)
}
