package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podboot/podboot/agent/store"
)

// serveLog serves GET /api/v1/namespaces/{ns}/pods/{name}/log: the query
// decoded into PodLogOptions and validated as the API server does, the
// container defaulted or checked against the pod, then the log streamed
// through the LogStreamer with a flush after every write.
func (s *server) serveLog(w http.ResponseWriter, r *http.Request, req resourceRequest) {
	opts, err := parseLogOptions(req.name, r.URL.Query())
	if err != nil {
		writeStatus(w, err)
		return
	}
	obj, ok := s.store.Get(store.KindPod, req.namespace, req.name)
	if !ok {
		writeStatus(w, notFound(req.res, req.name))
		return
	}
	if opts.Container, err = logContainer(obj.(*corev1.Pod), opts.Container); err != nil {
		writeStatus(w, err)
		return
	}
	if s.logs == nil {
		writeStatus(w, apierrors.NewServiceUnavailable("logs are not available on this agent"))
		return
	}
	fw := &flushWriter{w: w}
	fw.flusher, _ = w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	err = s.logs.Stream(r.Context(), req.namespace, req.name, opts, fw)
	switch {
	case err == nil:
		if !fw.wrote {
			w.WriteHeader(http.StatusOK)
		}
	case !fw.wrote:
		w.Header().Del("Content-Type")
		writeStatus(w, err)
	case r.Context().Err() == nil:
		// Too late for a status: the client sees the stream end.
		s.log.Warn("api: log stream failed", "namespace", req.namespace, "pod", req.name, "container", opts.Container, "err", err)
	}
}

// flushWriter sends every write to the client at once, so that a followed
// log reads like tail -f.
type flushWriter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	wrote   bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if f.flusher != nil {
		f.flusher.Flush()
	}
	return n, err
}

// parseLogOptions decodes the log query; unparsable values are 400 Bad
// Request and invalid ones 422 Invalid, as from the API server.
func parseLogOptions(pod string, v url.Values) (*corev1.PodLogOptions, error) {
	opts := &corev1.PodLogOptions{Container: v.Get("container")}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"follow", &opts.Follow}, {"previous", &opts.Previous}, {"timestamps", &opts.Timestamps},
		{"insecureSkipTLSVerifyBackend", &opts.InsecureSkipTLSVerifyBackend},
	} {
		if s := v.Get(b.name); s != "" {
			val, err := strconv.ParseBool(s)
			if err != nil {
				return nil, badRequest("invalid %s %q: must be true or false", b.name, s)
			}
			*b.dst = val
		}
	}
	for _, n := range []struct {
		name string
		dst  **int64
	}{
		{"sinceSeconds", &opts.SinceSeconds}, {"tailLines", &opts.TailLines}, {"limitBytes", &opts.LimitBytes},
	} {
		if s := v.Get(n.name); s != "" {
			val, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, badRequest("invalid %s %q: must be an integer", n.name, s)
			}
			*n.dst = &val
		}
	}
	if s := v.Get("sinceTime"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, badRequest("invalid sinceTime %q: must be an RFC 3339 time", s)
		}
		mt := metav1.NewTime(t)
		opts.SinceTime = &mt
	}
	if s := v.Get("stream"); s != "" {
		opts.Stream = &s
	}
	if errs := validateLogOptions(opts); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, pod, errs)
	}
	return opts, nil
}

// validateLogOptions is the API server's ValidatePodLogOptions.
func validateLogOptions(opts *corev1.PodLogOptions) field.ErrorList {
	var errs field.ErrorList
	if opts.TailLines != nil && *opts.TailLines < 0 {
		errs = append(errs, field.Invalid(field.NewPath("tailLines"), *opts.TailLines, "must be greater than or equal to 0"))
	}
	if opts.LimitBytes != nil && *opts.LimitBytes < 1 {
		errs = append(errs, field.Invalid(field.NewPath("limitBytes"), *opts.LimitBytes, "must be greater than 0"))
	}
	switch {
	case opts.SinceSeconds != nil && opts.SinceTime != nil:
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	case opts.SinceSeconds != nil && *opts.SinceSeconds < 1:
		errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), *opts.SinceSeconds, "must be greater than 0"))
	}
	if opts.Stream != nil {
		switch *opts.Stream {
		case corev1.LogStreamStdout, corev1.LogStreamStderr:
			if opts.TailLines != nil {
				errs = append(errs, field.Forbidden(field.NewPath(""), "`tailLines` and specific `stream` are mutually exclusive for now"))
			}
		case corev1.LogStreamAll:
		default:
			errs = append(errs, field.NotSupported(field.NewPath("stream"), *opts.Stream, []string{corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr}))
		}
	}
	return errs
}

// logContainer defaults or checks the container as the API server's
// LogLocation does.
func logContainer(pod *corev1.Pod, container string) (string, error) {
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", badRequest("a container name must be specified for pod %s", pod.Name)
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, containerNames(pod.Spec.Containers))
		if len(pod.Spec.InitContainers) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: %s", containerNames(pod.Spec.InitContainers))
		}
		return "", apierrors.NewBadRequest(msg)
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == container {
				return container, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == container {
			return container, nil
		}
	}
	return "", badRequest("container %s is not valid for pod %s", container, pod.Name)
}

func containerNames(cs []corev1.Container) []string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Name
	}
	return names
}
