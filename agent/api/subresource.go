package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	agentruntime "github.com/podboot/podboot/agent/runtime"
	"github.com/podboot/podboot/agent/store"
	"github.com/podboot/podboot/agent/streaming"
)

// streamingSubresources are the pod subresources served by
// serveSubresource.
var streamingSubresources = map[string]bool{"exec": true, "attach": true, "portforward": true}

// Streams runs exec, attach and port-forward in a pod's containers: the
// runtime's side of the streaming subresources (runtime/containerd).
type Streams interface {
	agentruntime.Streamer
}

// serveSubresource serves pods/{name}/exec, attach and portforward as the
// API server and kubelet do together: the API server's checks (the pod,
// the container) answered as a Status before any upgrade, kubelet's
// (a running container) as kubelet answers them, then the session on the
// protocol the client asked for (agent/streaming).
func (s *server) serveSubresource(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	if s.opts.Streams == nil {
		writeStatus(w, streamsNotServed(r.Method, req.describe()))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		// The API server connects these with GET (WebSocket) and POST (SPDY).
		writeStatus(w, streamsNotServed(r.Method, req.describe()))
		return
	}
	obj, ok := s.store.Get(store.KindPod, req.namespace, req.name)
	if !ok {
		writeStatus(w, notFound(req.res, req.name))
		return
	}
	pod := obj.(*corev1.Pod)
	if pod.Spec.NodeName == "" {
		writeStatus(w, badRequest("pod %s does not have a host assigned", pod.Name))
		return
	}
	if req.sub == "portforward" {
		s.servePortForward(w, r, pod)
		return
	}
	q := r.URL.Query()
	container, err := containerFor(pod, q.Get("container"))
	if err != nil {
		writeStatus(w, err)
		return
	}
	opts := streaming.Options{
		Stdin:  paramBool(q["stdin"]),
		Stdout: paramBool(q["stdout"]),
		Stderr: paramBool(q["stderr"]),
		TTY:    paramBool(q["tty"]),
	}
	if err := opts.Validate(); err != nil {
		writeStatus(w, badRequest("%s", err.Error()))
		return
	}
	cmd := q["command"]
	if req.sub == "exec" && len(cmd) == 0 {
		writeStatus(w, badRequest("you must specify at least 1 command"))
		return
	}
	id, ok := runningContainerID(pod, container)
	if !ok {
		// kubelet's answer when the runtime has no running container of
		// that name; kubectl prints "unable to upgrade connection: ...".
		http.Error(w, fmt.Sprintf("container not found (%q)", container), http.StatusInternalServerError)
		return
	}
	streams := s.opts.Streams
	if req.sub == "attach" {
		streaming.ServeAttach(w, r, opts, func(ctx context.Context, sio agentruntime.StreamIO) error {
			return streams.Attach(ctx, id, sio)
		})
		return
	}
	streaming.ServeExec(w, r, opts, func(ctx context.Context, sio agentruntime.StreamIO) error {
		return streams.Exec(ctx, id, cmd, sio)
	})
}

// servePortForward forwards the connections of the session to pod's
// ports. kubectl resolves a named port from the pod's spec before it
// asks; a connection to a port nothing listens on fails alone, on its
// own error stream, as kubelet's does.
//
// A forward outlives any one connection, so it is ended when its pod goes
// away (deleted, or replaced by a pod of another UID): kubectl then
// reports the lost connection and exits rather than waiting for the next
// connection to fail.
func (s *server) servePortForward(w http.ResponseWriter, r *http.Request, pod *corev1.Pod) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go s.cancelWhenPodGone(ctx, cancel, pod)
	streams, uid := s.opts.Streams, pod.UID
	streaming.ServePortForward(w, r.WithContext(ctx), func(ctx context.Context, port int32, stream io.ReadWriteCloser) error {
		return streams.PortForward(ctx, uid, port, stream)
	})
}

// podGonePoll is how often a forward looks for its pod.
const podGonePoll = time.Second

// cancelWhenPodGone cancels once pod is no longer in the store, until ctx
// ends.
func (s *server) cancelWhenPodGone(ctx context.Context, cancel context.CancelFunc, pod *corev1.Pod) {
	t := time.NewTicker(podGonePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		obj, ok := s.store.Get(store.KindPod, pod.Namespace, pod.Name)
		if !ok || obj.(*corev1.Pod).UID != pod.UID {
			cancel()
			return
		}
	}
}

// containerFor is the API server's choice of container (validateContainer
// in pkg/registry/core/pod): the one named, which must be the pod's, or
// the only one.
func containerFor(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", badRequest("a container name must be specified for pod %s", pod.Name)
		default:
			var names []string
			for _, c := range pod.Spec.InitContainers {
				names = append(names, c.Name)
			}
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			for _, c := range pod.Spec.EphemeralContainers {
				names = append(names, c.Name)
			}
			return "", badRequest("a container name must be specified for pod %s, choose one of: %s", pod.Name, names)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", badRequest("container %s is not valid for pod %s", name, pod.Name)
}

// runningContainerID is the runtime ID of the pod's running container of
// that name, from its status ("containerd://<id>").
func runningContainerID(pod *corev1.Pod, name string) (string, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.Name != name || cs.State.Running == nil || cs.ContainerID == "" {
				continue
			}
			_, id, ok := strings.Cut(cs.ContainerID, "://")
			if !ok || id == "" {
				return "", false
			}
			return id, true
		}
	}
	return "", false
}

// paramBool reads a boolean query parameter as apimachinery's
// Convert_Slice_string_To_bool: absent, "0" or "false" is false, any
// other value true.
func paramBool(v []string) bool {
	return len(v) > 0 && v[0] != "0" && !strings.EqualFold(v[0], "false")
}

// streamsNotServed answers a streaming subresource the agent does not
// serve (no runtime) or a method the API server does not connect.
func streamsNotServed(method, what string) error {
	return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: what}, strings.ToLower(method))
}
