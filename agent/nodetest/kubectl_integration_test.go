package nodetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
	"github.com/podboot/podboot/tools/imagebuild"
)

// TestIntegrationKubectl runs the stock kubectl against a real node with
// real pods: every command the read API promises.
func TestIntegrationKubectl(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
	n := startNode(t)
	n.writeManifest("kubectl.yaml", `
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: front, labels: {app: web, tier: frontend, env: prod}}
spec:
  containers:
  - {name: web, image: "busybox:1.36", command: ["sh", "-c", "echo web line 1; echo web line 2; exec sleep 3600"]}
  - {name: helper, image: "busybox:1.36", command: ["sh", "-c", "echo helper here; exec sleep 3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: back, labels: {app: api, tier: backend, env: staging}}
spec:
  containers:
  - {name: api, image: "busybox:1.36", command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: cart, namespace: shop, labels: {app: cart}}
spec:
  containers:
  - {name: cart, image: "busybox:1.36", command: ["sh", "-c", "i=0; while true; do echo cart $i; i=$((i+1)); sleep 0.3; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: flaky, labels: {app: flaky}}
spec:
  containers:
  - {name: main, image: "busybox:1.36", command: ["sh", "-c", "echo run at $(date +%s%N); sleep 1; exit 1"]}
`)
	n.waitPod("front", time.Minute, "Running", running)
	n.waitPod("back", time.Minute, "Running", running)
	n.waitPod("flaky", time.Minute, "restarted", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.RestartCount >= 1
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if p, ok := n.getPod("shop", "cart"); ok && running(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shop/cart not running")
		}
		time.Sleep(200 * time.Millisecond)
	}

	names := func(out string) []string {
		var got []string
		for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if i == 0 || line == "" {
				continue
			}
			got = append(got, strings.Fields(line)[0])
		}
		return got
	}
	checkNames := func(t *testing.T, out string, want ...string) {
		t.Helper()
		if got := strings.Join(names(out), ","); got != strings.Join(want, ",") {
			t.Errorf("names = %s, want %s\n%s", got, strings.Join(want, ","), out)
		}
	}

	t.Run("get po", func(t *testing.T) {
		out := n.mustKubectl("get", "po")
		if !regexp.MustCompile(`(?m)^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$`).MatchString(out) {
			t.Errorf("header:\n%s", out)
		}
		if !regexp.MustCompile(`(?m)^front\s+2/2\s+Running\s+0\s+\d+s$`).MatchString(out) {
			t.Errorf("front row:\n%s", out)
		}
		checkNames(t, out, "back", "flaky", "front")
	})
	t.Run("get po -A", func(t *testing.T) {
		out := n.mustKubectl("get", "po", "-A")
		if !regexp.MustCompile(`(?m)^shop\s+cart\s+1/1\s+Running`).MatchString(out) || !strings.Contains(out, "NAMESPACE") {
			t.Errorf("\n%s", out)
		}
	})
	t.Run("get po -n", func(t *testing.T) { checkNames(t, n.mustKubectl("get", "po", "-n", "shop"), "cart") })
	t.Run("-o wide", func(t *testing.T) {
		out := n.mustKubectl("get", "po", "front", "-o", "wide")
		if !regexp.MustCompile(`NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES`).MatchString(out) {
			t.Errorf("\n%s", out)
		}
	})
	t.Run("-o yaml and json", func(t *testing.T) {
		y := n.mustKubectl("get", "po", "front", "-o", "yaml")
		for _, want := range []string{"apiVersion: v1", "kind: Pod", "name: front", "phase: Running", "containerID: containerd://", "restartPolicy: Always"} {
			if !strings.Contains(y, want) {
				t.Errorf("yaml lacks %q", want)
			}
		}
		var list corev1.PodList
		if err := json.Unmarshal([]byte(n.mustKubectl("get", "po", "-o", "json")), &list); err != nil || len(list.Items) != 3 {
			t.Errorf("json list: %v, %d items", err, len(list.Items))
		}
	})
	t.Run("--show-labels and -L", func(t *testing.T) {
		out := n.mustKubectl("get", "po", "front", "--show-labels")
		if !strings.Contains(out, "app=web,env=prod,tier=frontend") {
			t.Errorf("\n%s", out)
		}
		out = n.mustKubectl("get", "po", "-L", "app,tier")
		if !regexp.MustCompile(`(?m)^front\s+2/2\s+Running\s+0\s+\S+\s+web\s+frontend$`).MatchString(out) || !strings.Contains(out, "APP") {
			t.Errorf("\n%s", out)
		}
	})
	for _, tt := range []struct{ sel, want string }{
		{"app=web", "front"},
		{"app!=web", "back,flaky"},
		{"tier", "back,front"},
		{"!tier", "flaky"},
		{"env in (prod,staging)", "back,front"},
		{"env notin (prod)", "back,flaky"},
		{"tier,env=prod", "front"},
	} {
		t.Run("-l "+tt.sel, func(t *testing.T) {
			out, err := n.kubectl("get", "po", "-l", tt.sel)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			checkNames(t, out, strings.Split(tt.want, ",")...)
		})
	}
	t.Run("--field-selector", func(t *testing.T) {
		checkNames(t, n.mustKubectl("get", "po", "--field-selector", "metadata.name=back"), "back")
	})
	t.Run("describe po", func(t *testing.T) {
		out := n.mustKubectl("describe", "po", "flaky")
		for _, want := range []string{"Name:", "flaky", "Status:", "Containers:", "Restart Count:", "Events:", "Created", "Started"} {
			if !strings.Contains(out, want) {
				t.Errorf("describe lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("logs", func(t *testing.T) {
		if out := n.mustKubectl("logs", "front", "-c", "helper"); out != "helper here\n" {
			t.Errorf("logs -c helper = %q", out)
		}
		if out := n.mustKubectl("logs", "front", "-c", "web", "--tail", "1"); out != "web line 2\n" {
			t.Errorf("--tail 1 = %q", out)
		}
		out := n.mustKubectl("logs", "back", "--timestamps")
		_ = out // sleep prints nothing; timestamps checked on front below
		out = n.mustKubectl("logs", "front", "-c", "web", "--timestamps")
		if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z web line 1$`).MatchString(out) {
			t.Errorf("--timestamps = %q", out)
		}
		prev := n.mustKubectl("logs", "flaky", "--previous")
		if !strings.HasPrefix(prev, "run at ") {
			t.Errorf("--previous = %q", prev)
		}
		if out, err := n.kubectl("logs", "back", "--previous"); err == nil || !strings.Contains(out, "previous terminated container") {
			t.Errorf("--previous without one: %v %q", err, out)
		}
	})
	t.Run("logs -f", func(t *testing.T) {
		cmd := exec.Command("kubectl", "--server", n.url, "--cache-dir", n.kube, "logs", "-f", "-n", "shop", "cart")
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 0, 4096)
			buf := make([]byte, 512)
			for strings.Count(string(b), "\n") < 20 {
				k, err := stdout.Read(buf)
				b = append(b, buf[:k]...)
				if err != nil {
					break
				}
			}
			got <- string(b)
		}()
		select {
		case out := <-got:
			// 20 lines at 0.3 s each: most arrived while following.
			if strings.Count(out, "\n") < 20 || !strings.Contains(out, "cart ") {
				t.Errorf("follow = %q", out)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("logs -f produced no new lines")
		}
	})
	t.Run("get po -w", func(t *testing.T) {
		cmd := exec.Command("kubectl", "--server", n.url, "--cache-dir", n.kube, "get", "po", "-w")
		var out lockedBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		time.Sleep(time.Second)
		n.writeManifest("late.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: late}\nspec:\n  containers:\n  - {name: c, image: \"busybox:1.36\", command: [sleep, \"3600\"]}\n")
		deadline := time.Now().Add(time.Minute)
		for !regexp.MustCompile(`(?m)^late\s+1/1\s+Running`).MatchString(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("watch did not show late Running:\n%s", out.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	t.Run("get ns, nodes, events", func(t *testing.T) {
		ns := n.mustKubectl("get", "ns")
		for _, want := range []string{"default", "kube-system", "shop"} {
			if !regexp.MustCompile(`(?m)^` + want + `\s+Active`).MatchString(ns) {
				t.Errorf("get ns lacks %s:\n%s", want, ns)
			}
		}
		nodes := n.mustKubectl("get", "nodes", "-o", "wide")
		if !regexp.MustCompile(`(?m)^\S+\s+Ready\s+`).MatchString(nodes) || !strings.Contains(nodes, "containerd://") {
			t.Errorf("get nodes:\n%s", nodes)
		}
		ev := n.mustKubectl("get", "events")
		for _, want := range []string{"LAST SEEN", "Started", "pod/front"} {
			if !strings.Contains(ev, want) {
				t.Errorf("get events lacks %q:\n%s", want, ev)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		out, err := n.kubectl("get", "po", "nope")
		if err == nil || !strings.Contains(out, `Error from server (NotFound): pods "nope" not found`) {
			t.Errorf("%v %q", err, out)
		}
	})
	t.Run("kubelet read-only endpoints", func(t *testing.T) {
		resp, err := http.Get(n.url + "/pods")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list corev1.PodList
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || list.Kind != "PodList" || len(list.Items) < 4 {
			t.Errorf("/pods: %v kind %q items %d", err, list.Kind, len(list.Items))
		}
		h, err := http.Get(n.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(h.Body)
		h.Body.Close()
		if h.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("/healthz = %d %q", h.StatusCode, b)
		}
	})
}

// TestIntegrationRegistryPull pulls from a registry on 127.0.0.1 with each
// imagePullPolicy.
func TestIntegrationRegistryPull(t *testing.T) {
	n := startNode(t)
	host := testenv.Registry(t)
	img, err := imagebuild.Build(imagebuild.Spec{Tags: []string{"pulled/hello:1"}, Arch: goruntime.GOARCH, Busybox: testenv.Busybox,
		Cmd: []string{"sh", "-c", "echo pulled from registry; exec sleep 3600"}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Push(t, host, "pulled/hello:1", img)
	n.writeManifest("pull.yaml", fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: pulled}
spec:
  containers:
  - {name: main, image: "%[1]s/pulled/hello:1", imagePullPolicy: Always}
---
apiVersion: v1
kind: Pod
metadata: {name: ifnotpresent}
spec:
  containers:
  - {name: main, image: "%[1]s/pulled/hello:1"}
---
apiVersion: v1
kind: Pod
metadata: {name: missing-tag}
spec:
  containers:
  - {name: main, image: "%[1]s/pulled/hello:404"}
`, host))
	p := n.waitPod("pulled", time.Minute, "Running", running)
	if id := p.Status.ContainerStatuses[0].ImageID; !strings.Contains(id, "@sha256:") {
		t.Errorf("imageID %q", id)
	}
	n.waitPod("ifnotpresent", time.Minute, "Running", running)
	if out := n.mustKubectl("logs", "pulled"); out != "pulled from registry\n" {
		t.Errorf("logs = %q", out)
	}
	n.waitPod("missing-tag", time.Minute, "ErrImagePull then ImagePullBackOff", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "main")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ImagePullBackOff"
	})
	ev := n.mustKubectl("get", "events", "--field-selector", "involvedObject.name=missing-tag")
	if !strings.Contains(ev, "Failed") || !strings.Contains(ev, "404") && !strings.Contains(ev, "not found") {
		t.Errorf("events:\n%s", ev)
	}
	if p, _ := n.getPod("default", "pulled"); !running(p) {
		t.Errorf("pulled pod stopped running")
	}
}
