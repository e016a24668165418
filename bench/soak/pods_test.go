package soak

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/podboot/podboot/agent/manifest"
)

// The manifests go through the agent's own strict decoder: a soak whose
// pods are rejected would measure an idle node.
func TestManifestsDecode(t *testing.T) {
	mix := DefaultMix()
	if mix.Total() != 20 {
		t.Errorf("DefaultMix has %d pods, want the issue's 20", mix.Total())
	}
	kinds := map[Kind]int{}
	uids := map[string]string{}
	for _, p := range mix.Pods() {
		kinds[p.Kind]++
		for _, gen := range []int{1, 2} {
			data, err := p.Manifest(gen)
			if err != nil {
				t.Fatal(err)
			}
			set := manifest.Decode(p.Name+".yaml", data, manifest.Options{NodeName: "soak"})
			if len(set.Errors) > 0 || len(set.Pods) != 1 {
				t.Fatalf("%s generation %d: %d pods, errors %v:\n%s", p.Name, gen, len(set.Pods), set.Errors, data)
			}
			pod := set.Pods[0]
			if pod.Name != p.Name {
				t.Errorf("pod name %q, want %q", pod.Name, p.Name)
			}
			uid := string(pod.UID)
			if prev, ok := uids[p.Name]; ok {
				// Only an edit of a Replaced pod must make a new pod.
				if changed := prev != uid; changed != (p.Kind == Replaced) {
					t.Errorf("%s (%s): the UID changed with the generation: %t, want %t", p.Name, p.Kind, changed, p.Kind == Replaced)
				}
			}
			uids[p.Name] = uid
		}
	}
	want := map[Kind]int{Steady: 6, Probed: 2, CrashLoop: 4, Replaced: 4, Logger: 4}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("pods by kind (-want +got):\n%s", diff)
	}
}
