package nodetest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/podboot/podboot/internal/testenv"
)

// The OTA contract end to end on a devnode (issue 13): bundles made and
// signed by the real podctl, delivered through the API (podctl ota push)
// and from a registry on 127.0.0.1 the board polls, refused for every
// reason the contract names, health-gated and rolled back on their own,
// and a node killed with SIGKILL at random moments of its updates.

// requireOTANode is requireNode plus what the OTA tests drive the node
// with: kubectl and bin/podctl.
func requireOTANode(t *testing.T) {
	t.Helper()
	requireNode(t)
	podctlPath(t)
	if _, err := exec.LookPath("kubectl"); err != nil {
		testenv.Unavailable(t, "needs kubectl on PATH")
	}
}

// waitFleet waits until the node's generation pods are exactly g's, each
// Running and Ready, and returns them by namespace/name.
func (n *node) waitFleet(t testing.TB, g generation, timeout time.Duration) map[string]corev1.Pod {
	t.Helper()
	want := g.want()
	var got map[string]string
	var notReady []string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		pods, err := n.listPods()
		if err != nil {
			continue
		}
		got = fleetPods(pods)
		if !cmp.Equal(want, got) {
			continue
		}
		byName := map[string]corev1.Pod{}
		notReady = notReady[:0]
		for _, p := range pods {
			if _, ok := want[p.Namespace+"/"+p.Name]; !ok {
				continue
			}
			byName[p.Namespace+"/"+p.Name] = p
			if !running(&p) || condition(&p, corev1.PodReady) != corev1.ConditionTrue || p.DeletionTimestamp != nil {
				notReady = append(notReady, p.Name)
			}
		}
		if len(notReady) == 0 {
			return byName
		}
	}
	var all []string
	if pods, err := n.listPods(); err == nil {
		for _, p := range pods {
			all = append(all, fmt.Sprintf("%s/%s uid %s generation %q phase %s Ready %s deleting %t", p.Namespace, p.Name, p.UID, p.Labels[genLabel],
				p.Status.Phase, condition(&p, corev1.PodReady), p.DeletionTimestamp != nil))
		}
	}
	t.Fatalf("generation %d's pods not all Running and Ready, alone, within %v: pods (namespace/name: generation) (-want +got):\n%s\nnot ready: %v\nevery pod:\n%s\nagent log:\n%s",
		g.number, timeout, cmp.Diff(want, got), notReady, strings.Join(all, "\n"), tail(n.stderr.String(), 60))
	return nil
}

// handCheck fails t unless the hand-placed pod is the one first seen:
// same UID, Running, never restarted.
func (n *node) handCheck(t testing.TB, first *corev1.Pod) {
	t.Helper()
	p := n.waitPodIn(t, "default", "hand", 30*time.Second, "Running", running)
	if cs := containerStatus(p, "main"); p.UID != first.UID || cs.RestartCount != 0 {
		t.Errorf("the hand-placed pod was touched: UID %s → %s, restarts %d (last termination %+v), want the same UID and 0\nagent log:\n%s",
			first.UID, p.UID, cs.RestartCount, cs.LastTerminationState.Terminated, tail(n.stderr.String(), 60))
	}
}

// scrape reads one unlabelled series' value from the node's /metrics
// ("" when it is not there).
func scrape(t testing.TB, n *node, series string) string {
	t.Helper()
	resp, err := n.http.Get(n.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d, %v", resp.StatusCode, err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// ignoreVolatile leaves out of a status comparison what the contract
// does not fix: the attempts of a finished trial and where bundles come from.
var ignoreVolatile = cmpopts.IgnoreFields(otaStatus{}, "Attempts", "Source", "Reason")

// TestIntegrationOTA runs the contract of issue 13 in order on one
// devnode: generation 1 pushed, generation 2 polled from the registry,
// every refusal, a crash-looping generation 3 rolled back on its own and
// never retried, generation 4 and `podctl ota rollback` back to 2; the
// pod a person placed on the flash runs untouched throughout.
func TestIntegrationOTA(t *testing.T) {
	requireOTANode(t)
	t.Parallel()
	work := t.TempDir()
	key, pub := keygen(t, work, "fleet.key")
	stranger, _ := keygen(t, work, "stranger.key")
	if r := podctlRun(t, "ota", "keygen", key); r.code == 0 {
		t.Errorf("podctl ota keygen over an existing key: exit 0, want a refusal\n%s", r)
	}
	reg := testenv.Registry(t)
	source := reg + "/fleet/edge:stable"
	const poll, deadline, stable = 2 * time.Second, 40 * time.Second, 5 * time.Second
	n := startOTANode(t, func(flash string) {
		writeFile(t, flash, "device.yaml", otaDevice(pub, source, poll, deadline, stable))
		writeFile(t, filepath.Join(flash, "pods"), "hand.yaml", handPod)
	})
	hand := n.waitPod("hand", time.Minute, "Running", running)
	// How long an update may take to commit: its pods start, are Ready,
	// and stay so for stableFor; the rest is a loaded machine's margin.
	commitWithin := poll + stable + 45*time.Second

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow() // the steps build on each other
		}
	}

	g1 := generation{number: 1, pods: []string{"web"}}
	tar1 := g1.build(t, key, work)
	step("push generation 1", func(t *testing.T) {
		if st := n.otaStatusCLI(t); st.Generation != 0 || st.State == "trying" {
			t.Errorf("before any bundle: %+v, want generation 0 and no trial", st)
		}
		r := n.podctl(t, "ota", "push", tar1)
		if r.code != 0 {
			t.Fatalf("podctl ota push gen1.tar: %s\nagent log:\n%s", r, tail(n.stderr.String(), 40))
		}
		// The push returns once the trial began, and prints the status.
		if !regexp.MustCompile(`(?m)^no generation committed yet; trying 1\b`).MatchString(r.stdout) {
			t.Errorf("podctl ota push gen1.tar printed %q, want the status with generation 1 on trial", r.stdout)
		}
		n.waitOTA(t, commitWithin, "generation 1 committed", func(st otaStatus) bool { return st.Generation == 1 && st.State == "committed" })
		if diff := cmp.Diff(otaStatus{Generation: 1, State: "committed", Failed: []uint64{}}, n.otaStatusCLI(t), ignoreVolatile); diff != "" {
			t.Errorf("podctl ota status -o json (-want +got):\n%s", diff)
		}
		n.waitFleet(t, g1, 30*time.Second)
		// As a person sees it.
		p := n.podIn(t, "default", "web")
		if !running(p) || condition(p, corev1.PodReady) != corev1.ConditionTrue || p.Labels[genLabel] != "1" {
			t.Errorf("kubectl get pod web: phase %s, Ready %s, generation %q; want Running, Ready, 1", p.Status.Phase, condition(p, corev1.PodReady), p.Labels[genLabel])
		}
		n.handCheck(t, hand)
	})

	// Generation 2 brings an image of its own: it exists only in the
	// bundle, so its pods run only if the bundle's images were imported.
	g2 := generation{number: 2, pods: []string{"web", "worker"}, image: "ota.podboot.test/fleet-app:2"}
	tar2 := g2.build(t, key, work)
	step("generation 2 from the registry", func(t *testing.T) {
		mustPodctl(t, "ota", "publish", "--plain-http", tar2, source)
		n.waitOTA(t, commitWithin+2*poll, "generation 2 committed", func(st otaStatus) bool { return st.Generation == 2 && st.State == "committed" })
		if diff := cmp.Diff(otaStatus{Generation: 2, State: "committed", Failed: []uint64{}}, n.otaStatusCLI(t), ignoreVolatile); diff != "" {
			t.Errorf("podctl ota status -o json (-want +got):\n%s", diff)
		}
		pods := n.waitFleet(t, g2, 30*time.Second)
		for _, p := range pods {
			if cs := containerStatus(&p, "main"); cs == nil || !regexp.MustCompile(regexp.QuoteMeta(g2.image)+`$`).MatchString(cs.Image) {
				t.Errorf("pod %s runs %+v, want the bundle's image %s", p.Name, cs, g2.image)
			}
		}
		n.handCheck(t, hand)
	})

	step("refusals", func(t *testing.T) {
		// Each bundle below is refused: nothing changes on the node, and
		// the reason is in the push's stderr, the status and an Event.
		g3 := generation{number: 3, pods: []string{"web"}}
		pods3, _ := g3.write(t, work)
		byStranger := filepath.Join(work, "stranger.tar")
		mustPodctl(t, "ota", "build", "--key", stranger, "--generation", "3", "--pods", pods3, "-o", byStranger)
		signed3 := g3.build(t, key, work)
		forged := filepath.Join(work, "forged.tar")
		resignless(t, signed3, forged, func(st map[string]any) { st["generation"] = 30 })
		flipped := filepath.Join(work, "flipped.tar")
		flipByte(t, signed3, flipped)
		tooNew := filepath.Join(work, "too-new.tar")
		buildForNewerAgent(t, key, pods3, tooNew, 3, "v99.0.0")
		collide := generation{number: 3, pods: []string{"web", "hand"}}
		colliding := filepath.Join(work, "colliding.tar")
		cpods, _ := collide.write(t, filepath.Join(work, "colliding"))
		mustPodctl(t, "ota", "build", "--key", key, "--generation", "3", "--pods", cpods, "-o", colliding)

		// The board's messages say which generation was refused, why,
		// and end with the reason in words (agent/ota/bundle).
		for _, tc := range []struct {
			name, bundle string
			message      *regexp.Regexp
		}{
			{"unknown key", byStranger, regexp.MustCompile(`bundle generation 3 refused: .*\(unknown key\)`)},
			{"bad signature", forged, regexp.MustCompile(`bundle generation 30 refused: .*\(bad signature\)`)},
			{"flipped byte", flipped, regexp.MustCompile(`refused: .*\((layer mismatch|malformed|bad signature)\)`)},
			{"replay", tar1, regexp.MustCompile(`bundle generation 1 refused: .*\(replay\)`)},
			{"too-old agent", tooNew, regexp.MustCompile(`bundle generation 3 refused: .*v99\.0\.0.*\(agent too old\)`)},
			{"colliding pod name", colliding, regexp.MustCompile(`refused: .*\bhand\b`)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				since := time.Now()
				r := n.podctl(t, "ota", "push", tc.bundle)
				if r.code == 0 || !tc.message.MatchString(r.stderr) {
					t.Errorf("podctl ota push: %s\nwant a non-zero exit and the board's message, matching %s, on stderr", r, tc.message)
				}
				st := n.otaStatusCLI(t)
				if diff := cmp.Diff(otaStatus{Generation: 2, State: "committed", Failed: []uint64{}}, st, ignoreVolatile); diff != "" {
					t.Errorf("podctl ota status -o json after the refusal (-want +got):\n%s", diff)
				}
				if !tc.message.MatchString(st.Reason) {
					t.Errorf("podctl ota status: reason %q, want the refusal's (matching %s)", st.Reason, tc.message)
				}
				e := n.waitEvent(t, since, fmt.Sprintf("of type Warning whose message matches %s", tc.message), func(e corev1.Event) bool {
					return e.Type == corev1.EventTypeWarning && tc.message.MatchString(e.Message)
				})
				t.Logf("push: %s; event: %s %s: %s", r.stderr, e.Type, e.Reason, e.Message)
			})
		}
		n.waitFleet(t, g2, 10*time.Second)
		n.handCheck(t, hand)
	})

	// Generation 3 crash-loops: the health gate rolls it back to 2 within
	// healthDeadline, it is marked failed, and never runs again.
	g3 := generation{number: 3, pods: []string{"web", "worker", "crasher"}, crash: "crasher"}
	tar3 := g3.build(t, key, filepath.Join(work, "bad"))
	step("a crash-looping generation is rolled back on its own", func(t *testing.T) {
		since := time.Now()
		mustPodctl(t, "ota", "publish", "--plain-http", tar3, source)
		n.waitOTA(t, 3*poll+30*time.Second, "generation 3 on trial", func(st otaStatus) bool { return st.State == "trying" && st.Trying == 3 })
		began := time.Now()
		st := n.waitOTA(t, deadline+45*time.Second, "generation 3 rolled back", func(st otaStatus) bool { return st.State != "trying" })
		if took := time.Since(began); took > deadline+15*time.Second {
			t.Errorf("the rollback took %v from the trial's start, want within healthDeadline %v (and a margin)", took, deadline)
		}
		if diff := cmp.Diff(otaStatus{Generation: 2, State: "rolled-back", Failed: []uint64{3}}, st, ignoreVolatile); diff != "" {
			t.Errorf("OTA status after the rollback (-want +got):\n%s", diff)
		}
		cli := n.otaStatusCLI(t)
		if diff := cmp.Diff(otaStatus{Generation: 2, State: "rolled-back", Failed: []uint64{3}}, cli, ignoreVolatile); diff != "" {
			t.Errorf("podctl ota status -o json (-want +got):\n%s", diff)
		}
		if !regexp.MustCompile(`crasher`).MatchString(cli.Reason) {
			t.Errorf("podctl ota status: reason %q, want it to name the pod that failed (crasher)", cli.Reason)
		}
		rollback := regexp.MustCompile(`(?i)roll(ed)?[ -]?back`)
		e := n.waitEvent(t, since, "of type Warning about the rollback", func(e corev1.Event) bool {
			return e.Type == corev1.EventTypeWarning && rollback.MatchString(e.Reason+" "+e.Message)
		})
		t.Logf("event: %s %s: %s", e.Type, e.Reason, e.Message)
		var conds []string
		found := false
		for _, c := range n.nodeObject(t).Status.Conditions {
			conds = append(conds, fmt.Sprintf("%s=%s %s: %s", c.Type, c.Status, c.Reason, c.Message))
			if rollback.MatchString(c.Reason+" "+c.Message) && regexp.MustCompile(`\b3\b`).MatchString(c.Message) {
				found = true
			}
		}
		if !found {
			t.Errorf("the node has no condition reporting generation 3's rollback:\n%s", conds)
		}
		// As a person reads it, and as a fleet's monitoring scrapes it.
		human := n.podctl(t, "ota", "status")
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?m)^generation 2 rolled-back: generation 3 rolled back to generation 2: .*crasher`),
			regexp.MustCompile(`(?m)^failed: 3$`),
		} {
			if human.code != 0 || !re.MatchString(human.stdout) {
				t.Errorf("podctl ota status: %s\nwant a line matching %s", human, re)
			}
		}
		if got := scrape(t, n, "podboot_ota_rollbacks_total"); got != "1" {
			t.Errorf("/metrics podboot_ota_rollbacks_total = %q, want 1", got)
		}
		n.waitFleet(t, g2, 30*time.Second)
		n.handCheck(t, hand)
	})

	step("a failed generation is never retried", func(t *testing.T) {
		// Published again (built anew: another issuedAt, another digest),
		// and pushed: never tried, never a pod of it.
		again := g3.build(t, key, filepath.Join(work, "bad-again"))
		mustPodctl(t, "ota", "publish", "--plain-http", again, source)
		for end := time.Now().Add(3*poll + 2*time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			st, ok := n.otaStatusHTTP()
			if ok && (st.State == "trying" || st.Generation != 2) {
				t.Fatalf("generation 3, published again, is tried: %+v", st)
			}
			if pods, err := n.listPods(); err == nil {
				for name, g := range fleetPods(pods) {
					if g != "2" {
						t.Fatalf("pod %s of generation %s runs; only generation 2 may", name, g)
					}
				}
			}
		}
		r := n.podctl(t, "ota", "push", tar3)
		if r.code == 0 || !regexp.MustCompile(`bundle generation 3 refused: .*\(failed before\)`).MatchString(r.stderr) {
			t.Errorf("podctl ota push of the failed generation 3: %s\nwant a non-zero exit and the refusal (failed before)", r)
		}
		if diff := cmp.Diff(otaStatus{Generation: 2, State: "rolled-back", Failed: []uint64{3}}, n.otaStatusCLI(t), ignoreVolatile); diff != "" {
			t.Errorf("podctl ota status -o json (-want +got):\n%s", diff)
		}
		n.waitFleet(t, g2, 10*time.Second)
	})

	step("podctl ota rollback", func(t *testing.T) {
		g4 := generation{number: 4, pods: []string{"web", "api"}}
		if r := n.podctl(t, "ota", "push", g4.build(t, key, work)); r.code != 0 {
			t.Fatalf("podctl ota push gen4.tar: %s", r)
		}
		n.waitOTA(t, commitWithin, "generation 4 committed", func(st otaStatus) bool { return st.Generation == 4 && st.State == "committed" })
		n.waitFleet(t, g4, 30*time.Second)
		if r := n.podctl(t, "ota", "rollback"); r.code != 0 {
			t.Fatalf("podctl ota rollback: %s", r)
		}
		st := n.waitOTA(t, 30*time.Second, "back at generation 2", func(st otaStatus) bool { return st.Generation == 2 && st.State != "trying" })
		if diff := cmp.Diff(otaStatus{Generation: 2, State: "rolled-back", Failed: []uint64{3, 4}}, st, ignoreVolatile, cmpopts.SortSlices(func(a, b uint64) bool { return a < b })); diff != "" {
			t.Errorf("OTA status after podctl ota rollback (-want +got):\n%s", diff)
		}
		n.waitFleet(t, g2, 30*time.Second)
		// The rollback used up the previous generation (agent/ota/trial):
		// a second one has nowhere to go and is refused (409).
		if r := n.podctl(t, "ota", "rollback"); r.code == 0 {
			t.Errorf("a second podctl ota rollback: %s\nwant a non-zero exit: there is no previous generation", r)
		}
		if st := n.otaStatusCLI(t); st.Generation != 2 {
			t.Errorf("after the refused second rollback: %+v, want generation 2", st)
		}
		n.handCheck(t, hand)
	})
}

// TestIntegrationOTAPowerCuts kills the whole node with SIGKILL (devnode,
// its containerd and agent, and in half the rounds every shim and
// container too) at a random moment of each of 20 updates, pushed or
// polled from the registry, some of them crash-looping; boots it again on
// the same flash and checks, once it settles, that the pods are exactly
// one whole generation's, the generation never went down, and no failed
// or superseded generation ran again (watched throughout, across the
// cuts). PODBOOT_OTA_SEED=N replays one run's kill moments.
func TestIntegrationOTAPowerCuts(t *testing.T) {
	requireOTANode(t)
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PODBOOT_OTA_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PODBOOT_OTA_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (PODBOOT_OTA_SEED=%d replays these kill moments)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	work := t.TempDir()
	key, pub := keygen(t, work, "fleet.key")
	reg := testenv.Registry(t)
	source := reg + "/fleet/edge:stable"
	const poll, deadline, stable = time.Second, 15 * time.Second, 2 * time.Second
	n := startOTANode(t, func(flash string) {
		writeFile(t, flash, "device.yaml", otaDevice(pub, source, poll, deadline, stable))
		writeFile(t, filepath.Join(flash, "pods"), "hand.yaml", handPod)
	})
	hand := n.waitPod("hand", time.Minute, "Running", running)

	// gens are the generations made so far; a generation's pods differ
	// from the one before it in names, not only in labels.
	gens := map[uint64]generation{}
	makeGen := func(num uint64, bad bool) generation {
		g := generation{number: num, pods: []string{"app", fmt.Sprintf("extra-%d", num%3)}}
		if bad {
			g.pods, g.crash = append(g.pods, "crasher"), "crasher"
		}
		gens[num] = g
		return g
	}

	w := newWatcher(n)
	go w.run()
	t.Cleanup(w.stop)

	// settle waits until the node has left any trial and runs exactly
	// one generation's pods, and checks the invariants there.
	settle := func(t *testing.T, wantTried uint64) otaStatus {
		t.Helper()
		st := n.waitOTA(t, 3*deadline+60*time.Second, fmt.Sprintf("no trial, generation %d committed or failed", wantTried), func(st otaStatus) bool {
			return st.State != "trying" && (wantTried == 0 || st.Generation >= wantTried || slices.Contains(st.Failed, wantTried))
		})
		g, ok := gens[st.Generation]
		if !ok {
			t.Fatalf("the node runs generation %d, which the test never made: %+v", st.Generation, st)
		}
		n.waitFleet(t, g, 60*time.Second)
		if st2, _ := n.otaStatusHTTP(); st2.Generation != st.Generation || st2.State == "trying" {
			t.Fatalf("the status moved while the pods settled: %+v, then %+v", st, st2)
		}
		if st.Attempts > 3 {
			t.Errorf("attempts %d, want at most 3", st.Attempts)
		}
		// From now on, a pod of a failed generation or of one older
		// than the committed is a generation running again.
		w.retire(st)
		if p, ok := n.getPod("default", "hand"); !ok || p.UID != hand.UID {
			t.Errorf("the hand-placed pod is gone or replaced: %v", p)
		}
		return st
	}

	g1 := makeGen(1, false)
	if r := n.podctl(t, "ota", "push", g1.build(t, key, work)); r.code != 0 {
		t.Fatalf("podctl ota push gen1.tar: %s", r)
	}
	last := settle(t, 1)
	if last.Generation != 1 {
		t.Fatalf("generation 1 was not committed: %+v", last)
	}

	const rounds = 20
	committed := 0
	for round := 1; round <= rounds; round++ {
		num := uint64(round + 1)
		bad := round%6 == 0
		g := makeGen(num, bad)
		tarball := g.build(t, key, work)
		viaRegistry := rng.IntN(2) == 0
		// The update's moments: the upload or the poll, verification,
		// staging, the switch, the pods' start, the health gate, the
		// commit (about stableFor after Ready) or, for a bad one, the
		// rollback at healthDeadline.
		window := 6 * time.Second
		if bad {
			window = deadline + 3*time.Second
		}
		delay := time.Duration(rng.Int64N(int64(window)))
		withPods := rng.IntN(2) == 0
		ok := t.Run(fmt.Sprintf("round %d generation %d", round, num), func(t *testing.T) {
			how := "pushed"
			start := time.Now()
			var pushed sync.WaitGroup
			if viaRegistry {
				how = "published"
				mustPodctl(t, "ota", "publish", "--plain-http", tarball, source)
			} else {
				pushed.Add(1)
				go func() {
					defer pushed.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					// Its outcome is whatever the cut left: the settled
					// state is what is checked.
					_ = exec.CommandContext(ctx, podctlPath(t), "--server", n.url, "ota", "push", tarball).Run()
				}()
			}
			time.Sleep(time.Until(start.Add(delay)))
			before, _ := n.otaStatusHTTP()
			n.powerCut(t, withPods)
			t.Logf("%s, cut %v in (during %q, trying %d), pods killed too: %t", how, delay.Round(time.Millisecond), before.State, before.Trying, withPods)
			pushed.Wait()
			n.boot(t)
			// A published generation is taken once the node is back; a
			// push cut short may never have begun.
			var wantTried uint64
			if viaRegistry {
				wantTried = num
			}
			st := settle(t, wantTried)
			if st.Generation < last.Generation {
				t.Errorf("the generation went down: %d → %d", last.Generation, st.Generation)
			}
			for _, f := range last.Failed {
				if !slices.Contains(st.Failed, f) {
					t.Errorf("failed generation %d is no longer listed as failed: %+v", f, st)
				}
			}
			if bad && st.Generation == num {
				t.Errorf("crash-looping generation %d was committed: %+v", num, st)
			}
			if st.Generation == num {
				committed++
			}
			t.Logf("now generation %d %s, failed %v", st.Generation, st.State, st.Failed)
			last = st
		})
		for _, v := range w.violations() {
			t.Errorf("round %d: %s", round, v)
		}
		if !ok {
			t.FailNow()
		}
	}
	// The cuts must not have left the node unable to update: one more,
	// uncut, is committed.
	final := makeGen(rounds+2, false)
	if r := n.podctl(t, "ota", "push", final.build(t, key, work)); r.code != 0 {
		t.Fatalf("podctl ota push of the last generation after the cuts: %s", r)
	}
	if st := settle(t, final.number); st.Generation != final.number || st.State != "committed" {
		t.Errorf("the last generation after the cuts: %+v, want %d committed", st, final.number)
	}
	for _, v := range w.violations() {
		t.Error(v)
	}
	t.Logf("%d of %d cut updates ended committed", committed, rounds)
}

// watcher samples the node's OTA status and pods every 250 ms for the
// whole test, across power cuts, and records every breach of the
// invariants: the committed generation went down, or a pod of a retired
// generation (failed, or older than the committed one, once its pods
// were seen gone) exists again.
type watcher struct {
	n    *node
	done chan struct{}
	quit sync.Once
	ran  chan struct{}

	mu      sync.Mutex
	highest uint64
	retired map[uint64]bool
	found   []string
}

func newWatcher(n *node) *watcher {
	return &watcher{n: n, done: make(chan struct{}), ran: make(chan struct{}), retired: map[uint64]bool{}}
}

func (w *watcher) run() {
	defer close(w.ran)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-tick.C:
		}
		if st, ok := w.n.otaStatusHTTP(); ok {
			w.mu.Lock()
			if st.Generation < w.highest {
				w.found = append(w.found, fmt.Sprintf("the generation went down from %d: %+v", w.highest, st))
			}
			w.highest = max(w.highest, st.Generation)
			w.mu.Unlock()
		}
		// The retired set as it was before the list: a generation
		// retired while the list was on its way may still be in it.
		w.mu.Lock()
		retired := maps.Clone(w.retired)
		w.mu.Unlock()
		pods, err := w.n.listPods()
		if err != nil {
			continue
		}
		w.mu.Lock()
		for name, g := range fleetPods(pods) {
			num, _ := strconv.ParseUint(g, 10, 64)
			if retired[num] {
				w.found = append(w.found, fmt.Sprintf("pod %s of retired generation %d exists again", name, num))
			}
		}
		w.mu.Unlock()
	}
}

// retire marks the generations that must never run again from st on:
// the failed ones and every one below the committed. The caller has seen
// their pods gone.
func (w *watcher) retire(st otaStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range st.Failed {
		w.retired[f] = true
	}
	for g := uint64(1); g < st.Generation; g++ {
		w.retired[g] = true
	}
}

// violations returns what was found since the last call.
func (w *watcher) violations() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.found
	w.found = nil
	return v
}

func (w *watcher) stop() {
	w.quit.Do(func() { close(w.done) })
	<-w.ran
}
