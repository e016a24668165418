// Package apiauth makes and keeps the agent API's credentials: a private
// certificate authority, a server certificate it signs for the board's
// names and addresses, and a bearer token. The image builder generates them
// and writes the matching kubeconfig; podagent loads them from the flash at
// start and generates them itself on a first boot that finds none.
//
// On the flash they live in <flash>/api/: ca.crt, ca.key, tls.crt, tls.key
// and token. The CA key stays beside the server key so the agent can issue
// a new server certificate when the board's addresses change (DHCP) without
// invalidating kubeconfigs already handed out: they trust the CA, not the
// server certificate.
package apiauth
