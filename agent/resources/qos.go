package resources

import corev1 "k8s.io/api/core/v1"

// QOSClass is kubelet's GetPodQOS (pkg/apis/core/v1/helper/qos/qos.go): the
// class recorded in status.qosClass when there is one, because it never
// changes once set, otherwise ComputePodQOS.
//
// ComputePodQOS follows the newest kubelet, which classifies each container
// on its own and combines them (older versions summed requests and limits
// over all containers first; for valid pods the result is the same). With
// pod-level resources (PodLevelResources, on by default since 1.34) a pod
// whose spec.resources is set is classified on those alone, its containers
// ignored.
func QOSClass(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return computeQOS(pod)
}

// computeQOS is ComputePodQOS: Guaranteed when every container, init
// containers included, has cpu and memory requests equal to non-zero limits;
// BestEffort when none has any; Burstable otherwise. Ephemeral containers
// cannot set resources and do not count.
func computeQOS(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Spec.Resources != nil {
		return resourceQOS(pod.Spec.Resources)
	}
	var podQOS corev1.PodQOSClass
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			qos := resourceQOS(&list[i].Resources)
			switch {
			case qos == corev1.PodQOSBurstable:
				return qos
			case podQOS == "":
				podQOS = qos
			case podQOS != qos:
				// one BestEffort and one Guaranteed container
				return corev1.PodQOSBurstable
			}
		}
	}
	if podQOS == "" {
		return corev1.PodQOSBestEffort
	}
	return podQOS
}

// resourceQOS classifies one set of requirements on cpu and memory only.
func resourceQOS(r *corev1.ResourceRequirements) corev1.PodQOSClass {
	if len(r.Requests) == 0 && len(r.Limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	var qos corev1.PodQOSClass
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := r.Requests[name], r.Limits[name]
		if !req.Equal(lim) {
			return corev1.PodQOSBurstable
		}
		bestEffort := req.IsZero()
		switch {
		case qos == "" && bestEffort:
			qos = corev1.PodQOSBestEffort
		case qos == "":
			qos = corev1.PodQOSGuaranteed
		case bestEffort != (qos == corev1.PodQOSBestEffort):
			return corev1.PodQOSBurstable
		}
	}
	return qos
}
