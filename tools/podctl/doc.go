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
//
// --vsock CID:PORT speaks to the agent's AF_VSOCK listener (plain HTTP, no
// token) instead of a server: from the hypervisor host, or inside the
// guest over vsock_loopback (CID 1).
package main
