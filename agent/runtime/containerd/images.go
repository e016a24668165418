package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/agent/runtime"
)

// NormalizeImage names an image as docker and kubelet do: busybox is
// docker.io/library/busybox:latest.
func NormalizeImage(image string) (reference.Named, error) {
	ref, err := reference.ParseDockerRef(image)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", image, err)
	}
	return ref, nil
}

// EnsureImage makes the image available by kubelet's pull policy rules:
// Never uses what is there, IfNotPresent pulls when absent, Always pulls.
func (r *Runtime) EnsureImage(ctx context.Context, image string, policy corev1.PullPolicy) (runtime.Image, error) {
	ctx = r.withNamespace(ctx)
	ref, err := NormalizeImage(image)
	if err != nil {
		return runtime.Image{}, err
	}
	name := ref.String()
	img, err := r.client.GetImage(ctx, name)
	present := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return runtime.Image{}, fmt.Errorf("look up image %q: %w", name, err)
	}
	var pull bool
	switch policy {
	case corev1.PullNever:
		if !present {
			return runtime.Image{}, fmt.Errorf("image %q: %w", image, runtime.ErrImageNeverPull)
		}
	case corev1.PullIfNotPresent, "":
		pull = !present
	case corev1.PullAlways:
		pull = true
	default:
		return runtime.Image{}, fmt.Errorf("image %q: unknown pull policy %q", image, policy)
	}
	if pull {
		img, err = r.pull(ctx, image, name)
		if err != nil {
			return runtime.Image{}, err
		}
	} else if err := r.unpack(ctx, img); err != nil {
		return runtime.Image{}, err
	}
	return r.imageInfo(ctx, img)
}

// pull pulls name (image normalized) through the mirrors and the
// registry. It fails with a *runtime.PullError that says whether any
// registry answered.
func (r *Runtime) pull(ctx context.Context, image, name string) (containerd.Image, error) {
	tr := registryTransport()
	// The transport is this pull's: its idle connections would otherwise
	// stay open for IdleConnTimeout after every pull.
	defer tr.CloseIdleConnections()
	watch := &pullWatch{next: tr}
	resolver := docker.NewResolver(docker.ResolverOptions{
		Hosts: registryHosts(r.cfg.Mirrors, &http.Client{Transport: watch}),
	})
	img, err := r.client.Pull(ctx, name,
		containerd.WithResolver(resolver),
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter),
	)
	if err != nil {
		return nil, &runtime.PullError{Image: image, Err: err, RegistryUnreachable: ctx.Err() == nil && watch.noRegistryAnswered()}
	}
	return img, nil
}

func (r *Runtime) unpack(ctx context.Context, img containerd.Image) error {
	ok, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return fmt.Errorf("check image %q is unpacked: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack image %q: %w", img.Name(), err)
	}
	return nil
}

// imageInfo is the image as the core sees it: ID as kubelet reports
// imageID (repo@digest) and the config's stop signal.
func (r *Runtime) imageInfo(ctx context.Context, img containerd.Image) (runtime.Image, error) {
	named, err := reference.ParseNormalizedNamed(img.Name())
	if err != nil {
		return runtime.Image{}, fmt.Errorf("image %q: %w", img.Name(), err)
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		return runtime.Image{}, fmt.Errorf("read config of image %q: %w", img.Name(), err)
	}
	return runtime.Image{
		Ref:        img.Name(),
		ID:         reference.TrimNamed(named).String() + "@" + img.Target().Digest.String(),
		StopSignal: spec.Config.StopSignal,
	}, nil
}

// ImportArchive imports the images of an OCI or docker archive (docker
// save's formats), named as docker would name them, and unpacks them. It
// returns their names.
func (r *Runtime) ImportArchive(ctx context.Context, path string) ([]string, error) {
	ctx = r.withNamespace(ctx)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	defer f.Close()
	imgs, err := r.client.Import(ctx, f,
		// An OCI index names images by annotation; a full name is
		// normalized, a bare tag (no repository) cannot name one.
		containerd.WithImageRefTranslator(func(ref string) string {
			named, err := reference.ParseDockerRef(ref)
			if err != nil {
				return ""
			}
			return named.String()
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", path, err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("import %q: the archive names no image", path)
	}
	var names []string
	var errs []error
	for _, i := range imgs {
		img := containerd.NewImage(r.client, i)
		if err := img.Unpack(ctx, snapshotter); err != nil {
			errs = append(errs, fmt.Errorf("import %q: unpack %q: %w", path, i.Name, err))
			continue
		}
		names = append(names, i.Name)
	}
	return names, errors.Join(errs...)
}
