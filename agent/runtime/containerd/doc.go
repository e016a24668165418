// Package containerd implements runtime.Runtime on the containerd v2 client
// and runc, without CRI and without pause containers:
//
//   - images: docker/OCI archives imported (ImportArchive) or pulled with
//     kubelet's pull policies, names normalized as docker does, unpacked for
//     the overlayfs snapshotter; registry mirrors (Config.Mirrors) follow
//     k3s's registries.yaml: endpoints in order, then the registry itself,
//     through containerd's docker resolver;
//   - sandboxes: a pod's network, IPC and UTS namespaces are created on a
//     locked OS thread and pinned by bind mounts under <StateDir>/netns/<uid>,
//     with a JSON record under <StateDir>/sandboxes so they survive an agent
//     restart;
//   - containers: OCI specs built with containerd's oci SpecOpts from the
//     image config and the Kubernetes container (command/args, $(VAR)
//     expansion, env, user, security context), all containers of a pod in
//     one shim (the io.containerd.runc.v2.group annotation), labels that let
//     a new agent adopt what an old one started;
//   - logs: each task's stdout/stderr FIFOs under <StateDir>/fifo/<id> are
//     copied into agent/logs writers, and re-attached after a restart;
//     once a task has exited its copier gets at most drainTimeout to
//     finish, then its FIFOs are closed (a stream held open by anything
//     else never ends on its own);
//   - events: containerd's /tasks/exit and /tasks/oom, the latter also
//     recorded as a container label so an OOM kill is never lost.
package containerd
