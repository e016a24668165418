package manifest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// An OTA generation's pods directory (<flash>/ota/gen/<N>/pods) is the
// fleet's set: written once, never changed, read with ReadDir. The board's
// own directory (<flash>/pods) stays what the Watcher reads and the API
// writes. The agent runs Union(own, fleet): the board's own objects, and
// the fleet's that do not collide with them.

// ReadDir reads every manifest file directly in dir once, in file-name
// order, and decodes them into a Set exactly as the Watcher decodes a
// directory whose files have settled. Unlike LoadDir it is strict about
// the directory: one that is missing or a file that cannot be read is an
// error, not a Set error, because a generation directory that cannot be
// read must not run as an empty set. Documents that do not decode or
// validate are in Set.Errors, as from the Watcher.
func ReadDir(dir string, opts Options) (*Set, error) {
	names, err := manifestFiles(dir)
	if err != nil {
		return nil, fmt.Errorf("read manifests in %s: %w", dir, err)
	}
	results := make([]*fileResult, 0, len(names))
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read manifests in %s: %w", dir, err)
		}
		results = append(results, decodeFile(name, data, opts))
	}
	return merge(results), nil
}

// Union is the Set the board runs: own's objects, and fleet's objects that
// own does not define, sorted as a directory's Set is. The fleet objects'
// Locations have Fleet set (see FromFleet). An object both define is a
// collision: own's wins, and its key is returned (in Collisions' order) so
// that the caller reports it. A Namespace both declare is no collision:
// namespaces are shared, and own's declaration is the one kept. Errors
// are own's, then fleet's. Either Set may be nil (none); the result is
// always a new Set, and neither argument is changed.
func Union(own, fleet *Set) (*Set, []ObjectKey) {
	if own == nil {
		own = &Set{}
	}
	if fleet == nil {
		fleet = &Set{}
	}
	u := &Set{sources: map[ObjectKey][]Location{}}
	for k, l := range own.sources {
		u.sources[k] = slices.Clone(l)
	}
	ownKeys := keysOf(own)
	var collisions []ObjectKey
	// take reports whether fleet's object under k joins the union.
	take := func(k ObjectKey) bool {
		if ownKeys[k] {
			if k.Kind != "Namespace" {
				collisions = append(collisions, k)
			}
			return false
		}
		for _, l := range fleet.sources[k] {
			l.Fleet = true
			u.sources[k] = append(u.sources[k], l)
		}
		return true
	}

	u.Pods = slices.Clone(own.Pods)
	for _, p := range fleet.Pods {
		if take(ObjectKey{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}) {
			u.Pods = append(u.Pods, p)
		}
	}
	u.ConfigMaps = slices.Clone(own.ConfigMaps)
	for _, c := range fleet.ConfigMaps {
		if take(ObjectKey{Kind: "ConfigMap", Namespace: c.Namespace, Name: c.Name}) {
			u.ConfigMaps = append(u.ConfigMaps, c)
		}
	}
	u.Secrets = slices.Clone(own.Secrets)
	for _, s := range fleet.Secrets {
		if take(ObjectKey{Kind: "Secret", Namespace: s.Namespace, Name: s.Name}) {
			u.Secrets = append(u.Secrets, s)
		}
	}
	u.Namespaces = slices.Clone(own.Namespaces)
	for _, n := range fleet.Namespaces {
		if take(ObjectKey{Kind: "Namespace", Name: n.Name}) {
			u.Namespaces = append(u.Namespaces, n)
		}
	}
	u.sortObjects()
	u.Errors = append(slices.Clone(own.Errors), fleet.Errors...)
	return u, collisions
}

// Collisions are the pods, configmaps and secrets both Sets define, pods
// first, then configmaps, then secrets, each by namespace and name (the
// order of a Set). A bundle whose set collides with the board's own is
// refused; a collision that appears later (a file added by hand) is
// resolved by Union in own's favour. Namespaces never collide.
func Collisions(own, fleet *Set) []ObjectKey {
	if own == nil || fleet == nil {
		return nil
	}
	ownKeys := keysOf(own)
	var out []ObjectKey
	for _, k := range keysInOrder(fleet) {
		if k.Kind != "Namespace" && ownKeys[k] {
			out = append(out, k)
		}
	}
	return out
}

// FromFleet reports whether the Set's object under k comes from the fleet
// set (a Set made by Union).
func (s *Set) FromFleet(k ObjectKey) bool {
	l, ok := s.Source(k)
	return ok && l.Fleet
}

// keysOf is the set of keys of the objects s holds.
func keysOf(s *Set) map[ObjectKey]bool {
	keys := map[ObjectKey]bool{}
	for _, k := range keysInOrder(s) {
		keys[k] = true
	}
	return keys
}

// keysInOrder are the keys of the objects s holds: pods, configmaps,
// secrets, namespaces, each in the Set's order.
func keysInOrder(s *Set) []ObjectKey {
	var keys []ObjectKey
	for _, p := range s.Pods {
		keys = append(keys, ObjectKey{Kind: "Pod", Namespace: p.Namespace, Name: p.Name})
	}
	for _, c := range s.ConfigMaps {
		keys = append(keys, ObjectKey{Kind: "ConfigMap", Namespace: c.Namespace, Name: c.Name})
	}
	for _, c := range s.Secrets {
		keys = append(keys, ObjectKey{Kind: "Secret", Namespace: c.Namespace, Name: c.Name})
	}
	for _, n := range s.Namespaces {
		keys = append(keys, ObjectKey{Kind: "Namespace", Name: n.Name})
	}
	return keys
}
