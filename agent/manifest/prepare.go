package manifest

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Annotation keys kubelet puts on static pods (pkg/kubelet/types).
const (
	ConfigSourceAnnotationKey = "kubernetes.io/config.source"
	ConfigHashAnnotationKey   = "kubernetes.io/config.hash"
	// ConfigSourceFile is the config.source of pods read from files.
	ConfigSourceFile = "file"
)

// preparePod turns a strictly decoded pod into the static pod podboot runs:
// API-server defaults, the UID, kubelet's static-pod fields, validation.
func preparePod(pod *corev1.Pod, opts Options) field.ErrorList {
	clearSystemFields(&pod.ObjectMeta)
	pod.Status = corev1.PodStatus{}
	defaultPod(pod)
	// kubelet's applyDefaults for file sources. The name stays as written:
	// podboot has no cluster to be unique in, so no "-<node>" suffix.
	// nodeName and the toleration are set before the UID is taken, so
	// that a document the API wrote without them (Render) hashes the same.
	pod.Spec.NodeName = opts.NodeName
	addNoExecuteToleration(pod)

	uid, err := objectUID(opts.NodeName, pod)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	pod.UID = uid
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[ConfigHashAnnotationKey] = string(uid)
	pod.Annotations[ConfigSourceAnnotationKey] = ConfigSourceFile

	return validatePod(pod)
}

// addNoExecuteToleration is kubelet's: static pods tolerate every NoExecute
// taint so that node problems never evict them.
func addNoExecuteToleration(pod *corev1.Pod) {
	t := staticPodToleration()
	for _, have := range pod.Spec.Tolerations {
		if have.MatchToleration(&t) {
			return
		}
	}
	pod.Spec.Tolerations = append(pod.Spec.Tolerations, t)
}

func staticPodToleration() corev1.Toleration {
	return corev1.Toleration{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
}

func prepareConfigMap(cm *corev1.ConfigMap, opts Options) field.ErrorList {
	clearSystemFields(&cm.ObjectMeta)
	defaultConfigMap(cm)
	if errs := validateConfigMap(cm); len(errs) > 0 {
		return errs
	}
	return setUID(&cm.UID, opts, cm)
}

func prepareSecret(s *corev1.Secret, opts Options) field.ErrorList {
	clearSystemFields(&s.ObjectMeta)
	defaultSecret(s)
	if errs := validateSecret(s); len(errs) > 0 {
		return errs
	}
	return setUID(&s.UID, opts, s)
}

func prepareNamespace(ns *corev1.Namespace, opts Options) field.ErrorList {
	clearSystemFields(&ns.ObjectMeta)
	defaultNamespace(ns)
	if errs := validateNamespace(ns); len(errs) > 0 {
		return errs
	}
	return setUID(&ns.UID, opts, ns)
}

func setUID[T ~string](dst *T, opts Options, obj any) field.ErrorList {
	uid, err := objectUID(opts.NodeName, obj)
	if err != nil {
		return field.ErrorList{field.InternalError(nil, err)}
	}
	*dst = T(uid)
	return nil
}
