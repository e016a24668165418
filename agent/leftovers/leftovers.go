package leftovers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podboot/podboot/agent/runtime"
)

// Runtime is what the collector asks the runtime: which pods and
// containers it still has.
type Runtime interface {
	ListSandboxes(ctx context.Context) ([]runtime.Sandbox, error)
	ListContainers(ctx context.Context) ([]runtime.ContainerStatus, error)
}

// Cgroups are the pods' cgroups (agent/cgroups).
type Cgroups interface {
	PodUIDs() ([]types.UID, error)
	// RemovePod kills what is left in the pod's cgroup and removes it.
	RemovePod(uid types.UID) error
	// RemoveStrayContainers removes the empty container cgroups of the pod
	// whose task is not live.
	RemoveStrayContainers(uid types.UID, live func(id string) bool) ([]string, error)
}

// Collector collects the leftovers of the pods the runtime no longer has.
// Run it once at start, before the pod manager: a pod being created at
// the same time would have state and no record yet.
type Collector struct {
	Runtime Runtime
	// Cgroups is nil when the pods have no cgroups.
	Cgroups Cgroups
	// PodDirs hold one directory per pod, named by its UID: the pinned
	// namespaces (<state>/netns), the volumes (<state>/kubelet/pods), the
	// pod files (<state>/podfiles).
	PodDirs []string
	Log     *slog.Logger
}

// Report is what Collect removed.
type Report struct {
	// PodDirs are the pod directories removed, each after its mounts.
	PodDirs []string
	// Unmounted are the mount points unmounted in them.
	Unmounted []string
	// PodCgroups are the UIDs whose pod cgroup was removed.
	PodCgroups []types.UID
	// ContainerCgroups are the IDs whose container cgroup was removed from
	// a pod that is still owned.
	ContainerCgroups []string
}

// Collect removes what no pod or live task of the runtime owns. When the
// runtime cannot be listed it removes nothing: without the owners, anything
// could be a live pod's. Every step runs even when an earlier one failed.
func (c *Collector) Collect(ctx context.Context) (Report, error) {
	var rep Report
	sandboxes, err := c.Runtime.ListSandboxes(ctx)
	if err != nil {
		return rep, fmt.Errorf("collect leftovers: list sandboxes: %w", err)
	}
	containers, err := c.Runtime.ListContainers(ctx)
	if err != nil {
		return rep, fmt.Errorf("collect leftovers: list containers: %w", err)
	}
	owned := map[types.UID]bool{}
	for _, sb := range sandboxes {
		owned[sb.Pod.UID] = true
	}
	live := map[string]bool{}
	for _, ct := range containers {
		owned[ct.Pod.UID] = true
		// Created and unknown count as live: only an exited task is
		// known to have no process left.
		if ct.State != runtime.ContainerExited {
			live[ct.ID] = true
		}
	}

	var errs []error
	for _, dir := range c.PodDirs {
		des, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("collect leftovers: %w", err))
			continue
		}
		for _, de := range des {
			if !de.IsDir() || owned[types.UID(de.Name())] {
				continue
			}
			p := filepath.Join(dir, de.Name())
			unmounted, err := removeUnmounted(p)
			rep.Unmounted = append(rep.Unmounted, unmounted...)
			if err != nil {
				errs = append(errs, fmt.Errorf("collect leftovers of pod %s: %w", de.Name(), err))
				continue
			}
			rep.PodDirs = append(rep.PodDirs, p)
		}
	}

	if c.Cgroups != nil {
		uids, err := c.Cgroups.PodUIDs()
		if err != nil {
			errs = append(errs, fmt.Errorf("collect leftovers: %w", err))
		}
		for _, uid := range uids {
			if !owned[uid] {
				// Nothing can own a process here: a live shim has a
				// container the runtime lists. What runs is a container
				// process that outlived its shim, which nobody else can
				// stop (kubelet kills orphaned pod cgroups' processes too).
				if err := c.Cgroups.RemovePod(uid); err != nil {
					errs = append(errs, fmt.Errorf("collect leftovers: %w", err))
					continue
				}
				rep.PodCgroups = append(rep.PodCgroups, uid)
				continue
			}
			ids, err := c.Cgroups.RemoveStrayContainers(uid, func(id string) bool { return live[id] })
			rep.ContainerCgroups = append(rep.ContainerCgroups, ids...)
			if err != nil {
				errs = append(errs, fmt.Errorf("collect leftovers: %w", err))
			}
		}
	}
	slices.Sort(rep.ContainerCgroups)
	c.log(rep)
	return rep, errors.Join(errs...)
}

func (c *Collector) log(rep Report) {
	log := c.Log
	if log == nil {
		return
	}
	if len(rep.PodDirs)+len(rep.Unmounted)+len(rep.PodCgroups)+len(rep.ContainerCgroups) == 0 {
		log.Debug("no leftovers of dead pods")
		return
	}
	log.Info("collected leftovers of dead pods", "dirs", rep.PodDirs, "unmounted", rep.Unmounted,
		"podCgroups", rep.PodCgroups, "containerCgroups", rep.ContainerCgroups)
}
