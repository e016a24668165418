// Package imagebuild builds small OCI images from a static busybox binary:
// the local stand-ins for the images that Kubernetes examples reference
// (busybox, nginx, redis, ...), written as docker or OCI archives. No
// registry is reachable from a board or a test machine, so every image the
// project runs is built here.
//
// Most stand-ins are busybox with a few shell scripts (scripts/). Where a
// script cannot do what the examples ask of the image, the image holds a
// small Go program of standins/ instead, one main package each, standard
// library only: agnhost (liveness: /healthz 200 for 10 s, then 500),
// goproxy (a forward proxy on :8080) and etcd (grpc.health.v1 on its
// client URLs, gRPC over net/http's h2c rather than grpc-go, which would
// double the binary). A File names such a program; Build compiles it from
// the sources embedded in this package, for the image's architecture
// (CGO_ENABLED=0, -trimpath, -ldflags=-s -w), in a throwaway module, so
// it needs the go command but neither the repository nor the network.
// Each build is cached in the user's cache directory
// (~/.cache/podboot/standins) under a digest of its sources, the
// architecture and the go command's version: a make test run builds each
// program once per architecture, whatever number of test binaries build
// images. A program adds 5.4-6.3 MB to its image (2.5-3 MB compressed).
//
// Builds are reproducible: fixed timestamps, sorted entries and fixed
// ownership, so the same inputs give the same bytes and the same digests.
package imagebuild
