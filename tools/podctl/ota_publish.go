package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/podboot/podboot/agent/ota/bundle"
)

// otaPublish copies the bundle (an OCI layout tar) to ref, a
// REGISTRY/REPO:TAG, with the credentials of docker login (oras login) if
// there are any, and prints where it went: boards whose ota.source names
// the tag pick it up on their next poll.
func otaPublish(ctx context.Context, bundlePath, ref string, plainHTTP bool, stdout io.Writer) error {
	// device.yaml's ota.source spelling is taken too.
	ref = strings.TrimPrefix(ref, "oci://")
	parsed, err := registry.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("ota publish: %w", err)
	}
	if err := parsed.ValidateReferenceAsTag(); err != nil {
		return fmt.Errorf("ota publish: %q: want REGISTRY/REPO:TAG (boards resolve the tag): %w", ref, err)
	}
	src, root, err := bundle.OpenTar(ctx, bundlePath)
	if err != nil {
		return fmt.Errorf("ota publish: %w", err)
	}
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return fmt.Errorf("ota publish: %w", err)
	}
	repo.PlainHTTP = plainHTTP
	// No docker config at all is anonymous, as oras without a login; a
	// config that cannot be read is an error rather than a puzzling 401.
	store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{})
	if err != nil {
		return fmt.Errorf("ota publish: read the registry credentials (docker login): %w", err)
	}
	repo.Client = &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache(), Credential: credentials.Credential(store)}
	desc, err := oras.Copy(ctx, tarTarget{src, root}, root.Digest.String(), repo, parsed.Reference, oras.DefaultCopyOptions)
	if err != nil {
		return fmt.Errorf("ota publish %s to %s: %w", bundlePath, ref, err)
	}
	fmt.Fprintf(stdout, "published %s to %s@%s\n", bundlePath, ref, desc.Digest)
	return nil
}

// tarTarget is a bundle's storage resolving its one manifest by digest,
// for oras.Copy.
type tarTarget struct {
	content.ReadOnlyStorage
	root ocispec.Descriptor
}

func (t tarTarget) Resolve(ctx context.Context, reference string) (ocispec.Descriptor, error) {
	if reference != t.root.Digest.String() {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", reference, errdef.ErrNotFound)
	}
	return t.root, nil
}
