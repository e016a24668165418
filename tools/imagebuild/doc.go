// Package imagebuild builds small OCI images from a static busybox binary:
// the local stand-ins for the images that Kubernetes examples reference
// (busybox, nginx, redis, ...), written as docker or OCI archives. No
// registry is reachable from a board or a test machine, so every image the
// project runs is built here.
//
// Builds are reproducible: fixed timestamps, sorted entries and fixed
// ownership, so the same inputs give the same bytes and the same digests.
package imagebuild
