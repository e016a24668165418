package api

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// updatablePodSpecFields is the API server's list, word for word
// (k8s.io/kubernetes pkg/apis/core/validation).
var updatablePodSpecFields = []string{
	"`spec.containers[*].image`",
	"`spec.initContainers[*].image`",
	"`spec.activeDeadlineSeconds`",
	"`spec.tolerations` (only additions to existing tolerations)",
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
}

// validatePodUpdate applies the API server's ValidatePodUpdate rule to a
// pod update: only the images, activeDeadlineSeconds, added tolerations
// and a negative terminationGracePeriodSeconds set to 1 may change. The
// live pod is stored with the flash's defaults and kubelet's static-pod
// fields (nodeName, the NoExecute toleration); a body usually lacks them,
// and the API server compares after defaulting, so a spec that differs is
// first put through a dry-run Save to get it as it would be stored.
func (s *server) validatePodUpdate(ctx context.Context, obj, live runtime.Object, info WriteInfo) (field.ErrorList, error) {
	pod, ok := obj.(*corev1.Pod)
	old, ok2 := live.(*corev1.Pod)
	if !ok || !ok2 || apiequality.Semantic.DeepEqual(pod.Spec, old.Spec) {
		return nil, nil
	}
	dry := info
	dry.DryRun = true
	stored, err := s.opts.Flash.Save(ctx, pod.DeepCopy(), dry)
	if err != nil {
		return nil, err
	}
	if sp, ok := stored.(*corev1.Pod); ok {
		pod = sp
	}
	return podSpecUpdateErrors(&pod.Spec, &old.Spec), nil
}

// podSpecUpdateErrors is the spec part of the API server's
// ValidatePodUpdate, on v1 types.
func podSpecUpdateErrors(spec, old *corev1.PodSpec) field.ErrorList {
	specPath := field.NewPath("spec")
	errs, stop := containerUpdateErrors(spec.Containers, old.Containers, specPath.Child("containers"))
	if stop {
		return errs
	}
	initErrs, stop := containerUpdateErrors(spec.InitContainers, old.InitContainers, specPath.Child("initContainers"))
	errs = append(errs, initErrs...)
	if stop {
		return errs
	}
	if spec.ActiveDeadlineSeconds != nil {
		v := *spec.ActiveDeadlineSeconds
		if v < 0 || v > math.MaxInt32 {
			return append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), v, validation.InclusiveRangeError(0, math.MaxInt32)))
		}
		if old.ActiveDeadlineSeconds != nil && *old.ActiveDeadlineSeconds < v {
			return append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), v, "must be less than or equal to previous value"))
		}
	} else if old.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(specPath.Child("activeDeadlineSeconds"), spec.ActiveDeadlineSeconds, "must not update from a positive integer to nil value"))
	}
	errs = append(errs, onlyAddedTolerations(spec.Tolerations, old.Tolerations, specPath.Child("tolerations"))...)
	if apiequality.Semantic.DeepEqual(*spec, *old) {
		return errs
	}

	// Put back what may change, then anything left is forbidden.
	munged := spec.DeepCopy()
	for i := range munged.Containers {
		munged.Containers[i].Image = old.Containers[i].Image
	}
	for i := range munged.InitContainers {
		munged.InitContainers[i].Image = old.InitContainers[i].Image
	}
	munged.ActiveDeadlineSeconds = nil
	if old.ActiveDeadlineSeconds != nil {
		v := *old.ActiveDeadlineSeconds
		munged.ActiveDeadlineSeconds = &v
	}
	munged.SchedulingGates = old.SchedulingGates
	munged.Tolerations = old.Tolerations
	if old.TerminationGracePeriodSeconds != nil && *old.TerminationGracePeriodSeconds < 0 &&
		munged.TerminationGracePeriodSeconds != nil && *munged.TerminationGracePeriodSeconds == 1 {
		munged.TerminationGracePeriodSeconds = old.TerminationGracePeriodSeconds
	}
	if !apiequality.Semantic.DeepEqual(*munged, *old) {
		specDiff := diff.Diff(*old, *munged)
		errs = append(errs, field.Forbidden(specPath, fmt.Sprintf("pod updates may not change fields other than %s\n%v", strings.Join(updatablePodSpecFields, ","), specDiff)))
	}
	return errs
}

// containerUpdateErrors is the API server's ValidateContainerUpdates.
func containerUpdateErrors(containers, old []corev1.Container, p *field.Path) (field.ErrorList, bool) {
	var errs field.ErrorList
	if len(containers) != len(old) {
		return append(errs, field.Forbidden(p, "pod updates may not add or remove containers")), true
	}
	for i, c := range containers {
		if c.Image == "" {
			errs = append(errs, field.Required(p.Index(i).Child("image"), ""))
		}
		if len(strings.TrimSpace(c.Image)) != len(c.Image) {
			errs = append(errs, field.Invalid(p.Index(i).Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
	}
	return errs, false
}

// onlyAddedTolerations is the API server's validateOnlyAddedTolerations:
// an existing toleration may change only its tolerationSeconds.
func onlyAddedTolerations(tolerations, old []corev1.Toleration, p *field.Path) field.ErrorList {
	for _, o := range old {
		found := false
		clone := o.DeepCopy()
		for _, t := range tolerations {
			clone.TolerationSeconds = t.TolerationSeconds
			if reflect.DeepEqual(*clone, t) {
				found = true
				break
			}
		}
		if !found {
			return field.ErrorList{field.Forbidden(p, "existing toleration can not be modified except its tolerationSeconds")}
		}
	}
	return nil
}
