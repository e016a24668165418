package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// offlineManifest is what tutorials write: an untagged image, so the pull
// policy is Always and kubelet pulls at every start. busybox comes on the
// flash: startNode's mkimage writes the stand-ins' archives, one of them
// tagged busybox:latest, into flash/images.
const offlineManifest = `
apiVersion: v1
kind: Pod
metadata: {name: offline}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo running from the flash; exec sleep 3600"]
`

// startOfflineNode is a node with no registry in reach: it runs in a
// network namespace of its own with only loopback, so neither docker.io
// nor a name server can be reached whatever the host's network is, and
// device.yaml sends every registry to a mirror on a loopback port nothing
// listens on (a namespace this test made has no listener on port 1).
// images is device.yaml's images section, if any.
func startOfflineNode(t *testing.T, images string) *node {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		testenv.Unavailable(t, "needs nsenter (util-linux)")
	}
	requireNode(t)
	device := "registries:\n  mirrors:\n    \"*\":\n      endpoint: [\"http://127.0.0.1:1\"]\n" + images
	return startNodeWith(t, nodeOptions{netns: testenv.NewNetNS(t)}, func(flash string) {
		if err := os.WriteFile(filepath.Join(flash, "device.yaml"), []byte(device), 0o644); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIntegrationOfflineLatest: on a board that no registry answers, a pod
// with an untagged image that came on the flash runs the stored image, and
// `kubectl get events` says so with an OfflineFallback Warning; with
// device.yaml's images.offlineFallback: false the node is as strict as
// kubelet: the pull fails, the container waits in ErrImagePull /
// ImagePullBackOff and never runs.
func TestIntegrationOfflineLatest(t *testing.T) {
	// kubectl get events' columns: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.
	fallbackEvent := regexp.MustCompile(`(?m)^\S+\s+Warning\s+OfflineFallback\s+pod/offline\s+Failed to pull image "busybox", no registry answered: .+; running the image already present on machine$`)
	failedPull := regexp.MustCompile(`(?m)^\S+\s+Warning\s+Failed\s+pod/offline\s+Failed to pull image "busybox": `)

	t.Run("fallback on by default", func(t *testing.T) {
		n := startOfflineNode(t, "")
		n.writeManifest("offline.yaml", offlineManifest)
		p := n.waitPodIn(t, "default", "offline", 2*time.Minute, "Running", running)
		cs := containerStatus(p, "main")
		if cs.RestartCount != 0 || !strings.HasPrefix(cs.ImageID, "docker.io/library/busybox@sha256:") {
			t.Errorf("main: restarts %d, imageID %q; want 0 and the stored docker.io/library/busybox", cs.RestartCount, cs.ImageID)
		}
		if out := n.waitContainerLog(t, "offline", "main", "running from the flash\n", 30*time.Second); out != "running from the flash\n" {
			t.Errorf("kubectl logs offline = %q", out)
		}
		events := n.mustKubectl("get", "events", "--field-selector", "involvedObject.name=offline")
		t.Logf("kubectl get events:\n%s", events)
		if !fallbackEvent.MatchString(events) {
			t.Error("kubectl get events (logged above) lacks the OfflineFallback Warning naming busybox")
		}
		// The fallback replaces the failed pull's Warning: a person sees
		// one Warning, not a failure that did not happen.
		if failedPull.MatchString(events) || strings.Contains(events, "ErrImagePull") || strings.Contains(events, "BackOff") {
			t.Error("kubectl get events (logged above) shows a failed pull although the stored image runs")
		}
	})

	t.Run("offlineFallback: false", func(t *testing.T) {
		n := startOfflineNode(t, "images:\n  offlineFallback: false\n")
		n.writeManifest("offline.yaml", offlineManifest)
		// The first pull fails with ErrImagePull; the retry 10 s later
		// finds the pull in backoff: ImagePullBackOff. Every state seen on
		// the way is checked, and the wait ends at the first sign of a
		// container that ran.
		ran := func(cs *corev1.ContainerStatus) bool {
			return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil || cs.RestartCount != 0
		}
		p := n.waitPodIn(t, "default", "offline", 2*time.Minute, "ImagePullBackOff", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "main")
			return cs != nil && (ran(cs) || cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff")
		})
		if cs := containerStatus(p, "main"); ran(cs) {
			t.Errorf("the container ran although its pull failed: %v", cs)
		}
		if out := n.mustKubectl("get", "pod", "offline"); !regexp.MustCompile(`(?m)^offline\s+0/1\s+(ErrImagePull|ImagePullBackOff)\s+0\s`).MatchString(out) {
			t.Errorf("kubectl get pod offline does not show the pull failure:\n%s", out)
		}
		events := n.mustKubectl("get", "events", "--field-selector", "involvedObject.name=offline")
		t.Logf("kubectl get events:\n%s", events)
		if !failedPull.MatchString(events) {
			t.Error("kubectl get events (logged above) lacks the failed pull's Warning")
		}
		if strings.Contains(events, "OfflineFallback") || strings.Contains(events, "Started") {
			t.Error("kubectl get events (logged above) shows a fallback or a started container with offlineFallback: false")
		}
	})
}
