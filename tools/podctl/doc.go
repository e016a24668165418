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
package main
