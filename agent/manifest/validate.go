package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validation follows k8s.io/kubernetes/pkg/apis/core/validation (which
// cannot be imported) for the rules a node agent depends on, with the same
// field paths and, where the helpers provide them, the same messages.

var (
	restartPolicies     = []string{string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}
	pullPolicies        = []string{string(corev1.PullAlways), string(corev1.PullIfNotPresent), string(corev1.PullNever)}
	dnsPolicies         = []string{string(corev1.DNSClusterFirst), string(corev1.DNSClusterFirstWithHostNet), string(corev1.DNSDefault), string(corev1.DNSNone)}
	portProtocols       = []string{string(corev1.ProtocolSCTP), string(corev1.ProtocolTCP), string(corev1.ProtocolUDP)}
	terminationPolicies = []string{string(corev1.TerminationMessageFallbackToLogsOnError), string(corev1.TerminationMessageReadFile)}
)

func validatePod(pod *corev1.Pod) field.ErrorList {
	allErrs := validateMeta(&pod.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	spec := &pod.Spec
	specPath := field.NewPath("spec")

	volumes, errs := validateVolumes(spec.Volumes, specPath.Child("volumes"))
	allErrs = append(allErrs, errs...)

	if len(spec.Containers) == 0 {
		allErrs = append(allErrs, field.Required(specPath.Child("containers"), ""))
	}
	names := sets.New[string]()
	// The probes and hooks (validate_probes.go) follow each container's
	// other fields, as in the API server's validateContainers.
	for i := range spec.InitContainers {
		c, cp := &spec.InitContainers[i], specPath.Child("initContainers").Index(i)
		allErrs = append(allErrs, validateContainer(c, cp, names, volumes, spec.HostNetwork)...)
		allErrs = append(allErrs, validateContainerHandlers(c, cp, spec.TerminationGracePeriodSeconds, true)...)
	}
	for i := range spec.Containers {
		c, cp := &spec.Containers[i], specPath.Child("containers").Index(i)
		allErrs = append(allErrs, validateContainer(c, cp, names, volumes, spec.HostNetwork)...)
		allErrs = append(allErrs, validateContainerHandlers(c, cp, spec.TerminationGracePeriodSeconds, false)...)
	}

	if !oneOf(string(spec.RestartPolicy), restartPolicies) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("restartPolicy"), spec.RestartPolicy, restartPolicies))
	}
	if !oneOf(string(spec.DNSPolicy), dnsPolicies) {
		allErrs = append(allErrs, field.NotSupported(specPath.Child("dnsPolicy"), spec.DNSPolicy, dnsPolicies))
	}
	if spec.DNSPolicy == corev1.DNSNone && spec.DNSConfig == nil {
		allErrs = append(allErrs, field.Required(specPath.Child("dnsConfig"), fmt.Sprintf("must provide `dnsConfig` when `dnsPolicy` is %s", corev1.DNSNone)))
	}
	if spec.Resources != nil {
		allErrs = append(allErrs, validateResources(spec.Resources, specPath.Child("resources"))...)
	}
	return allErrs
}

func validateContainer(c *corev1.Container, path *field.Path, names sets.Set[string], volumes sets.Set[string], hostNetwork bool) field.ErrorList {
	var allErrs field.ErrorList
	namePath := path.Child("name")
	switch {
	case c.Name == "":
		allErrs = append(allErrs, field.Required(namePath, ""))
	case names.Has(c.Name):
		allErrs = append(allErrs, field.Duplicate(namePath, c.Name))
	default:
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			allErrs = append(allErrs, field.Invalid(namePath, c.Name, msg))
		}
		names.Insert(c.Name)
	}

	switch {
	case c.Image == "":
		allErrs = append(allErrs, field.Required(path.Child("image"), ""))
	case c.Image != strings.TrimSpace(c.Image):
		allErrs = append(allErrs, field.Invalid(path.Child("image"), c.Image, "must not have leading or trailing whitespace"))
	}
	if !oneOf(string(c.ImagePullPolicy), pullPolicies) {
		allErrs = append(allErrs, field.NotSupported(path.Child("imagePullPolicy"), c.ImagePullPolicy, pullPolicies))
	}
	if !oneOf(string(c.TerminationMessagePolicy), terminationPolicies) {
		allErrs = append(allErrs, field.NotSupported(path.Child("terminationMessagePolicy"), c.TerminationMessagePolicy, terminationPolicies))
	}

	allErrs = append(allErrs, validatePorts(c.Ports, path.Child("ports"), hostNetwork)...)
	allErrs = append(allErrs, validateEnv(c.Env, path.Child("env"))...)
	allErrs = append(allErrs, validateResources(&c.Resources, path.Child("resources"))...)

	for i, m := range c.VolumeMounts {
		mp := path.Child("volumeMounts").Index(i)
		switch {
		case m.Name == "":
			allErrs = append(allErrs, field.Required(mp.Child("name"), ""))
		case !volumes.Has(m.Name):
			allErrs = append(allErrs, field.NotFound(mp.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			allErrs = append(allErrs, field.Required(mp.Child("mountPath"), ""))
		}
	}

	return allErrs
}

func validatePorts(ports []corev1.ContainerPort, path *field.Path, hostNetwork bool) field.ErrorList {
	var allErrs field.ErrorList
	names := sets.New[string]()
	for i, p := range ports {
		pp := path.Index(i)
		if p.Name != "" {
			if msgs := validation.IsValidPortName(p.Name); len(msgs) > 0 {
				for _, msg := range msgs {
					allErrs = append(allErrs, field.Invalid(pp.Child("name"), p.Name, msg))
				}
			} else if names.Has(p.Name) {
				allErrs = append(allErrs, field.Duplicate(pp.Child("name"), p.Name))
			} else {
				names.Insert(p.Name)
			}
		}
		if p.ContainerPort == 0 {
			allErrs = append(allErrs, field.Required(pp.Child("containerPort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(p.ContainerPort)) {
				allErrs = append(allErrs, field.Invalid(pp.Child("containerPort"), p.ContainerPort, msg))
			}
		}
		if p.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(p.HostPort)) {
				allErrs = append(allErrs, field.Invalid(pp.Child("hostPort"), p.HostPort, msg))
			}
			if hostNetwork && p.HostPort != p.ContainerPort {
				allErrs = append(allErrs, field.Invalid(pp.Child("containerPort"), p.ContainerPort, "must match `hostPort` when `hostNetwork` is true"))
			}
		}
		if p.Protocol == "" {
			allErrs = append(allErrs, field.Required(pp.Child("protocol"), ""))
		} else if !oneOf(string(p.Protocol), portProtocols) {
			allErrs = append(allErrs, field.NotSupported(pp.Child("protocol"), p.Protocol, portProtocols))
		}
	}
	return allErrs
}

func validateEnv(env []corev1.EnvVar, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, ev := range env {
		ep := path.Index(i)
		if ev.Name == "" {
			allErrs = append(allErrs, field.Required(ep.Child("name"), ""))
		} else {
			// RelaxedEnvironmentVariableValidation is GA: any printable
			// ASCII but '='.
			for _, msg := range validation.IsRelaxedEnvVarName(ev.Name) {
				allErrs = append(allErrs, field.Invalid(ep.Child("name"), ev.Name, msg))
			}
		}
		if vf := ev.ValueFrom; vf != nil {
			vp := ep.Child("valueFrom")
			n := countNonNil(vf.FieldRef != nil, vf.ResourceFieldRef != nil, vf.ConfigMapKeyRef != nil, vf.SecretKeyRef != nil, vf.FileKeyRef != nil)
			switch {
			case n == 0:
				allErrs = append(allErrs, field.Invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
			case n > 1:
				allErrs = append(allErrs, field.Invalid(vp, "", "may not have more than one field specified at a time"))
			case ev.Value != "":
				allErrs = append(allErrs, field.Invalid(vp, "", "may not be specified when `value` is not empty"))
			}
		}
	}
	return allErrs
}

func validateResources(r *corev1.ResourceRequirements, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, part := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name, q := range part.list {
			kp := path.Child(part.name).Key(string(name))
			for _, msg := range validation.IsQualifiedName(string(name)) {
				allErrs = append(allErrs, field.Invalid(kp, name, msg))
			}
			if q.Sign() < 0 {
				allErrs = append(allErrs, field.Invalid(kp, q.String(), "must be greater than or equal to 0"))
			}
		}
	}
	for name, req := range r.Requests {
		if lim, ok := r.Limits[name]; ok && !quantityLE(req, lim) {
			allErrs = append(allErrs, field.Invalid(path.Child("requests").Key(string(name)), req.String(),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return sortErrors(allErrs)
}

// validateVolumes returns the set of valid volume names for the mounts.
func validateVolumes(volumes []corev1.Volume, path *field.Path) (sets.Set[string], field.ErrorList) {
	var allErrs field.ErrorList
	names := sets.New[string]()
	for i, v := range volumes {
		vp := path.Index(i)
		switch {
		case v.Name == "":
			allErrs = append(allErrs, field.Required(vp.Child("name"), ""))
		case names.Has(v.Name):
			allErrs = append(allErrs, field.Duplicate(vp.Child("name"), v.Name))
		default:
			msgs := validation.IsDNS1123Label(v.Name)
			for _, msg := range msgs {
				allErrs = append(allErrs, field.Invalid(vp.Child("name"), v.Name, msg))
			}
			if len(msgs) == 0 {
				names.Insert(v.Name)
			}
		}
		if countVolumeSources(&v.VolumeSource) > 1 {
			allErrs = append(allErrs, field.Forbidden(vp, "may not specify more than 1 volume type"))
		}
		for _, m := range []struct {
			name string
			mode *int32
		}{
			{"secret", modeOf(v.Secret != nil, func() *int32 { return v.Secret.DefaultMode })},
			{"configMap", modeOf(v.ConfigMap != nil, func() *int32 { return v.ConfigMap.DefaultMode })},
			{"downwardAPI", modeOf(v.DownwardAPI != nil, func() *int32 { return v.DownwardAPI.DefaultMode })},
			{"projected", modeOf(v.Projected != nil, func() *int32 { return v.Projected.DefaultMode })},
		} {
			if m.mode != nil && (*m.mode < 0 || *m.mode > 0o777) {
				allErrs = append(allErrs, field.Invalid(vp.Child(m.name, "defaultMode"), *m.mode, "must be a number between 0 and 0777 (octal), both inclusive"))
			}
		}
	}
	return names, allErrs
}

func modeOf(present bool, get func() *int32) *int32 {
	if !present {
		return nil
	}
	return get()
}

// countVolumeSources counts the set members of a VolumeSource, which has
// only pointer fields, one per volume type.
func countVolumeSources(src *corev1.VolumeSource) int {
	return countNonNil(src.HostPath != nil, src.EmptyDir != nil, src.GCEPersistentDisk != nil,
		src.AWSElasticBlockStore != nil, src.GitRepo != nil, src.Secret != nil, src.NFS != nil,
		src.ISCSI != nil, src.Glusterfs != nil, src.PersistentVolumeClaim != nil, src.RBD != nil,
		src.FlexVolume != nil, src.Cinder != nil, src.CephFS != nil, src.Flocker != nil,
		src.DownwardAPI != nil, src.FC != nil, src.AzureFile != nil, src.ConfigMap != nil,
		src.VsphereVolume != nil, src.Quobyte != nil, src.AzureDisk != nil,
		src.PhotonPersistentDisk != nil, src.Projected != nil, src.PortworxVolume != nil,
		src.ScaleIO != nil, src.StorageOS != nil, src.CSI != nil, src.Ephemeral != nil, src.Image != nil)
}

func countNonNil(set ...bool) int {
	n := 0
	for _, b := range set {
		if b {
			n++
		}
	}
	return n
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	allErrs := validateMeta(&cm.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	size := 0
	for key, value := range cm.Data {
		size += len(value)
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		if _, dup := cm.BinaryData[key]; dup {
			allErrs = append(allErrs, field.Invalid(field.NewPath("data").Key(key), key, "duplicate of key present in binaryData"))
		}
	}
	for key, value := range cm.BinaryData {
		size += len(value)
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
	}
	if size > corev1.MaxSecretSize {
		allErrs = append(allErrs, field.TooLong(field.NewPath("data"), "", corev1.MaxSecretSize))
	}
	return sortErrors(allErrs)
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	allErrs := validateMeta(&s.ObjectMeta, true, apivalidation.NameIsDNSSubdomain)
	dataPath := field.NewPath("data")
	size := 0
	for key, value := range s.Data {
		size += len(value)
		for _, msg := range validation.IsConfigMapKey(key) {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), key, msg))
		}
	}
	if size > corev1.MaxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	var required []string
	switch s.Type {
	case corev1.SecretTypeTLS:
		required = []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}
	case corev1.SecretTypeDockerConfigJson:
		required = []string{corev1.DockerConfigJsonKey}
	case corev1.SecretTypeDockercfg:
		required = []string{corev1.DockerConfigKey}
	}
	for _, key := range required {
		if _, ok := s.Data[key]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(key), ""))
		}
	}
	return sortErrors(allErrs)
}

func validateNamespace(ns *corev1.Namespace) field.ErrorList {
	return validateMeta(&ns.ObjectMeta, false, apivalidation.ValidateNamespaceName)
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// sortErrors orders errors found while ranging over maps, so that the
// first error (and the message) is the same every time.
func sortErrors(errs field.ErrorList) field.ErrorList {
	slicesSortStableByField(errs)
	return errs
}

func slicesSortStableByField(errs field.ErrorList) {
	slices.SortStableFunc(errs, func(a, b *field.Error) int {
		return cmp.Or(strings.Compare(a.Field, b.Field), strings.Compare(a.Error(), b.Error()))
	})
}

// validateMeta is ValidateObjectMeta in a stable order (it ranges over the
// label and annotation maps).
func validateMeta(m *metav1.ObjectMeta, namespaced bool, nameFn apivalidation.ValidateNameFunc) field.ErrorList {
	return sortErrors(apivalidation.ValidateObjectMeta(m, namespaced, nameFn, field.NewPath("metadata")))
}
