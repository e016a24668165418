// Package source delivers OTA bundles to the board: from an OCI registry
// (oras-go), whose blobs are downloaded into a cache directory on the flash
// resumably, size-limited and digest-checked, or from an OCI image layout
// directory (a USB stick). Both offer the same two things, the manifest
// descriptor a tag or a layout names (Resolve) and a content.Fetcher for
// its blobs (Storage), so the controller opens and verifies a bundle the
// same way whatever brought it.
//
// The package trusts nothing it fetches beyond its digest: whether a
// bundle may be applied is bundle.Policy's decision.
package source
