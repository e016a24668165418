package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPodNetworkOnTheBoard: every pod with its own network gets an
// address on the board's bridge (status.podIP, /etc/hosts), the board
// reaches a pod by its IP, a hostPort answers through QEMU's forward and
// on the board's loopback, pods reach each other over TCP, and a deleted
// pod's address and veth are released.
func TestPodNetworkOnTheBoard(t *testing.T) {
	s := setup(t)
	dir := copyImage(t, s.qemuImage)
	fl := mustBeClean(t, dir)
	for _, name := range []string{"e2e-web.yaml", "e2e-client.yaml"} {
		b, err := os.ReadFile("testdata/network/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.WriteFile("/pods/"+name, b); err != nil {
			t.Fatal(err)
		}
	}
	webPort := FreePort(t)
	b := Boot(t, dir, Options{DebugShell: true, Forward: []string{fmt.Sprintf("%d:18080", webPort)}})
	mustWaitAPI(t, b)
	pods, err := b.WaitPods([]string{"e2e-client", "e2e-pair", "e2e-sleeper", "e2e-web"}, PodsTimeout)
	if err != nil {
		t.Fatalf("%v\nthe agent's warnings:\n%s", err, warnings(b.ConsoleText()))
	}
	sh := b.MustShell

	subnet := netip.MustParsePrefix("10.88.0.0/16")
	ips := map[string]string{}
	seen := map[string]string{}
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !subnet.Contains(ip) || len(p.Status.PodIPs) != 1 {
			t.Errorf("%s: podIP %q podIPs %v, want one address in %s", p.Name, p.Status.PodIP, p.Status.PodIPs, subnet)
			continue
		}
		if other, dup := seen[p.Status.PodIP]; dup {
			t.Errorf("%s and %s share %s", p.Name, other, p.Status.PodIP)
		}
		seen[p.Status.PodIP], ips[p.Name] = p.Name, p.Status.PodIP
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("board to pod", func(t *testing.T) {
		out := sh(t, fmt.Sprintf("wget -O /tmp/web http://%s:8080/; cat /tmp/web", ips["e2e-web"]))
		if !strings.Contains(out, "hello-from-e2e-web") {
			t.Errorf("wget from the board to e2e-web:\n%s", out)
		}
	})

	t.Run("hostPort from another host and from the board", func(t *testing.T) {
		// QEMU forwards 127.0.0.1:webPort here to the board's 18080, which
		// arrives on the board's own address: another host's view.
		var body string
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", webPort))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if body = string(b); strings.Contains(body, "hello-from-e2e-web") {
					break
				}
			}
		}
		if !strings.Contains(body, "hello-from-e2e-web") {
			t.Errorf("hostPort 18080 through QEMU's forward: %q", body)
		}
		if out := sh(t, "wget -O /tmp/web http://127.0.0.1:18080/; cat /tmp/web"); !strings.Contains(out, "hello-from-e2e-web") {
			t.Errorf("hostPort 18080 from the board's loopback:\n%s", out)
		}
	})

	t.Run("pod to pod", func(t *testing.T) {
		want := "hello-from-e2e-web\nfrom=" + ips["e2e-web"] + "\n"
		var logs string
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
			if logs, _ = b.Kubectl("logs", "e2e-client"); strings.Contains(logs, want) {
				break
			}
		}
		if !strings.Contains(logs, want) {
			t.Errorf("e2e-client never reached e2e-web at %s:\n%s", ips["e2e-web"], logs)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ips["e2e-client"]) + `\te2e-client$`).MatchString(logs) {
			t.Errorf("e2e-client's /etc/hosts lacks its own address %s:\n%s", ips["e2e-client"], logs)
		}
	})

	t.Run("deleting a pod releases its address", func(t *testing.T) {
		veths := func() int { return strings.Count(sh(t, "ip link"), "veth") }
		before := veths()
		sh(t, "rm /flash/pods/e2e-web.yaml")
		for deadline := time.Now().Add(PodsTimeout); ; time.Sleep(2 * time.Second) {
			if _, err := b.Kubectl("get", "pod", "e2e-web"); err != nil && strings.Contains(err.Error(), "not found") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("e2e-web not gone after its manifest was removed")
			}
		}
		if out := sh(t, "ls /run/podboot/cni/networks/podboot"); strings.Contains(out, ips["e2e-web"]) {
			t.Errorf("host-local still holds %s:\n%s", ips["e2e-web"], out)
		}
		if after := veths(); after != before-1 {
			t.Errorf("veths: %d before, %d after deleting a pod; want one fewer", before, after)
		}
	})

	mustPowerOff(t, b, func() error { _, err := b.Podctl(s.podctl, "poweroff"); return err })
	mustBeClean(t, dir)
}

// warnings are the agent's WARN and ERROR lines from the console, the last
// ten.
func warnings(console string) string {
	var out []string
	for _, l := range strings.Split(console, "\n") {
		if strings.HasPrefix(l, "podagent:") && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-10):], "\n")
}
