// Package bundle is the OTA bundle format: ed25519 keys, the signed
// statement (a DSSE envelope), building a bundle as an OCI image layout
// tar with oras-go, the verification policy, opening a bundle from any
// oras storage and unpacking it into a generation directory.
//
// A bundle is an OCI image manifest with artifactType ArtifactType whose
// config is the envelope (MediaTypeEnvelope) and whose layers are one tar
// of pod manifests (MediaTypePods) followed by one layer per image archive
// (MediaTypeImage). The statement inside the envelope names every layer's
// digest and size, so the signature covers all bytes the board runs.
// docs/ota.md ("Bundle format") describes it for operators.
package bundle
