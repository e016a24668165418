// Command podctl is a small client of a podboot agent's API, for where
// kubectl is not installed. It finds the server the way kubectl does
// (--server, --kubeconfig, $KUBECONFIG, ~/.kube/config) and prints what
// kubectl would.
//
//	podctl [--server URL | --kubeconfig FILE | --vsock CID:PORT] [-n NS | -A] get pods
//	podctl logs POD [-c CONTAINER] [-f]
//	podctl version
//	podctl poweroff
//	podctl reboot
//	podctl kubeconfig --user NAME [--read-only] [--duration 8760h] [-o FILE]
//	podctl kubeconfig --flash DIR --server URL --user NAME [--read-only] [-o FILE]
//	podctl ota keygen KEY
//	podctl ota build --key KEY --generation N --pods DIR [--images DIR] [--channel NAME] -o BUNDLE.tar
//	podctl ota push BUNDLE.tar
//	podctl ota publish [--plain-http] BUNDLE.tar REGISTRY/REPO:TAG
//	podctl ota status [-o json]
//	podctl ota rollback
//
// --vsock CID:PORT speaks to the agent's AF_VSOCK listener (plain HTTP)
// instead of a server: from the hypervisor host, or inside the guest over
// vsock_loopback (CID 1). It sends --token, the flash's admin or
// read-only token (api/token, api/read-only-token); without --token, on
// the board itself, the board's own admin token (/flash/api/token).
//
// kubeconfig writes a kubeconfig for a new user with a client
// certificate of the board's CA: its key is made here and the board signs
// a certificate request (admins only), or, with --flash, podctl signs with
// the CA key of a board's flash mounted here. See docs/api.md,
// "Authentication and authorization".
//
// ota signs, ships and steers over-the-air updates of the board's pods
// (docs/ota.md): keygen and build work on files here (build signs with
// every --key, for a k-of-n threshold; --fleet, --expires, --next-key and
// --next-threshold fill the rest of the statement), publish copies a
// bundle to an OCI registry with oras-go, and push, status and rollback
// talk to the board's /podboot/v1/ota endpoints like the commands above.
package main
