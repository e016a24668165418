// Command podctl is a small client of a podboot agent's API, for where
// kubectl is not installed. It finds the server the way kubectl does
// (--server, --kubeconfig, $KUBECONFIG, ~/.kube/config) and prints what
// kubectl would.
//
//	podctl [--server URL | --kubeconfig FILE] [-n NS | -A] get pods
//	podctl logs POD [-c CONTAINER] [-f]
//	podctl version
package main
