package podagent

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podboot/podboot/agent/logs"
	"github.com/podboot/podboot/agent/store"
)

// logStreamer serves `kubectl logs` from the CRI log files the runtime
// writes under root/<ns>_<name>_<uid>/<container>/<attempt>.log.
type logStreamer struct {
	st   *store.Store
	root string
}

var podResource = schema.GroupResource{Resource: "pods"}

func (l *logStreamer) Stream(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions, w io.Writer) error {
	obj, ok := l.st.Get("Pod", namespace, name)
	if !ok {
		return apierrors.NewNotFound(podResource, name)
	}
	pod := obj.(*corev1.Pod)
	container, err := pickContainer(pod, opts.Container)
	if err != nil {
		return err
	}
	dir := filepath.Join(l.root, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container)
	attempt, err := pickAttempt(pod, container, logAttempts(dir), opts.Previous)
	if err != nil {
		return err
	}
	ro := logs.ReadOptions{TailLines: -1, Timestamps: opts.Timestamps}
	if opts.TailLines != nil {
		ro.TailLines = *opts.TailLines
	}
	if opts.LimitBytes != nil {
		ro.LimitBytes = *opts.LimitBytes
	}
	switch {
	case opts.SinceTime != nil:
		ro.SinceTime = opts.SinceTime.Time
	case opts.SinceSeconds != nil:
		ro.SinceTime = time.Now().Add(-time.Duration(*opts.SinceSeconds) * time.Second)
	}
	path := filepath.Join(dir, strconv.Itoa(attempt)+".log")
	if opts.Follow && !opts.Previous {
		ro.Follow = true
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go l.cancelWhenStopped(ctx, cancel, pod, container, attempt)
	}
	return logs.Read(ctx, path, ro, w)
}

// pickAttempt chooses the log to read among the attempts that have one
// (ascending), as kubelet's validateContainerLogStatus chooses the
// instance: the newest, or with previous, lastState.terminated's: the
// instance before the newest, except while the container waits to restart
// after an exit (CrashLoopBackOff), when it is the newest (the one before
// it went with its container).
func pickAttempt(pod *corev1.Pod, container string, attempts []int, previous bool) (int, error) {
	if len(attempts) == 0 {
		if reason := waitingReason(pod, container); reason != "" {
			return 0, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, pod.Name, reason))
		}
		return 0, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not available", container, pod.Name))
	}
	if !previous {
		return attempts[len(attempts)-1], nil
	}
	i := len(attempts) - 2
	for _, cs := range allStatuses(pod) {
		if cs.Name == container && cs.State.Waiting != nil && cs.LastTerminationState.Terminated != nil {
			i = len(attempts) - 1
		}
	}
	if i < 0 {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, pod.Name))
	}
	return attempts[i], nil
}

// cancelWhenStopped ends a follow once the followed instance is no longer
// running (kubelet's follow ends with the container), after a short drain.
func (l *logStreamer) cancelWhenStopped(ctx context.Context, cancel context.CancelFunc, pod *corev1.Pod, container string, attempt int) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		obj, ok := l.st.Get("Pod", pod.Namespace, pod.Name)
		if ok && obj.(*corev1.Pod).UID == pod.UID && runningAttempt(obj.(*corev1.Pod), container, attempt) {
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		cancel()
		return
	}
}

func runningAttempt(pod *corev1.Pod, container string, attempt int) bool {
	for _, cs := range allStatuses(pod) {
		if cs.Name == container {
			return cs.State.Running != nil && int(cs.RestartCount) == attempt
		}
	}
	return false
}

func allStatuses(pod *corev1.Pod) []corev1.ContainerStatus {
	out := append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...)
	return append(out, pod.Status.ContainerStatuses...)
}

func waitingReason(pod *corev1.Pod, container string) string {
	for _, cs := range allStatuses(pod) {
		if cs.Name == container && cs.State.Waiting != nil {
			return cs.State.Waiting.Reason
		}
	}
	return ""
}

// pickContainer applies the API server's rules: the named container, else
// the default-container annotation, else the only container.
func pickContainer(pod *corev1.Pod, name string) (string, error) {
	var names, initNames []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		initNames = append(initNames, c.Name)
	}
	if name == "" {
		if d := pod.Annotations["kubectl.kubernetes.io/default-container"]; d != "" {
			name = d
		} else if len(names) == 1 {
			return names[0], nil
		} else {
			msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: [%s]", pod.Name, strings.Join(names, " "))
			if len(initNames) > 0 {
				msg += fmt.Sprintf(" or one of the init containers: [%s]", strings.Join(initNames, " "))
			}
			return "", apierrors.NewBadRequest(msg)
		}
	}
	for _, n := range append(names, initNames...) {
		if n == name {
			return n, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// logAttempts lists the attempt numbers that have a log file, ascending.
func logAttempts(dir string) []int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if a, err := strconv.Atoi(n); err == nil && a >= 0 {
			out = append(out, a)
		}
	}
	sort.Ints(out)
	return out
}
