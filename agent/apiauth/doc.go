// Package apiauth makes and keeps the agent API's credentials: a private
// certificate authority, a server certificate it signs for the board's
// names and addresses, and a bearer token. The image builder generates them
// and writes the matching kubeconfig; podagent keeps them with Ensure at
// start and when the board's addresses change.
//
// On the flash they live in <flash>/api/: ca.crt, ca.key, tls.crt, tls.key
// and token (the admin's), and read-only-token beside them, which podagent
// adds to a set that lacks it (EnsureReadOnlyToken). The CA also signs
// client certificates (SignClient: the user is the CommonName, the groups
// the Organizations, as kube-apiserver reads them), which podctl
// kubeconfig asks the board for. The CA key stays beside the server key so the agent can issue
// a new server certificate when the board's addresses change (DHCP) without
// invalidating kubeconfigs already handed out: they trust the CA, not the
// server certificate.
//
// A power cut never leaves a set that cannot serve: a new set is written
// into a temporary directory renamed into place; afterwards the CA, the
// server key and the token never change, and a new address or a repair
// rewrites tls.crt alone, atomically. Ensure repairs any torn or corrupt
// set whose CA is intact, and refuses (CAError) to replace a CA that is
// gone: clients trust it.
package apiauth
