// Package version is podboot's own version: what an OTA statement's
// minimum agent version is compared with, and what podctl and podagent
// print. The release build may set it with
// -ldflags '-X github.com/podboot/podboot/internal/version.Version=v0.14.0'.
package version

// Version is a semantic version with a leading v (golang.org/x/mod/semver).
// Each issue that changes what a bundle may rely on bumps it.
var Version = "v0.13.0"
