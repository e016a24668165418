package manifest

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The defaults below are the API server's, from SetDefaults_* in
// k8s.io/kubernetes/pkg/apis/core/v1/defaults.go (and the declarative
// "+default" markers of k8s.io/api/core/v1), which cannot be imported.
// They run on every object before validation, as on the API server.

// clearSystemFields drops what only the API server may set; the store sets
// its own values, and they must not feed the UID hash.
func clearSystemFields(m *metav1.ObjectMeta) {
	m.UID = ""
	m.ResourceVersion = ""
	m.Generation = 0
	m.CreationTimestamp = metav1.Time{}
	m.DeletionTimestamp = nil
	m.DeletionGracePeriodSeconds = nil
	m.SelfLink = ""
	// managedFields stay: server-side apply needs them after a reboot, and
	// the API writes them to the manifest (they are not in the UID).
}

func defaultPod(pod *corev1.Pod) {
	if pod.Namespace == "" {
		pod.Namespace = metav1.NamespaceDefault
	}
	spec := &pod.Spec

	// SetDefaults_PodSpec
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if spec.TerminationGracePeriodSeconds == nil {
		spec.TerminationGracePeriodSeconds = ptrTo(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	// The Priority admission plugin: no priorityClassName means priority 0.
	if spec.Priority == nil && spec.PriorityClassName == "" {
		spec.Priority = ptrTo(int32(0))
	}

	for i := range spec.Containers {
		defaultContainer(&spec.Containers[i])
	}
	for i := range spec.InitContainers {
		defaultContainer(&spec.InitContainers[i])
	}
	for i := range spec.EphemeralContainers {
		defaultContainer((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	for i := range spec.Volumes {
		defaultVolume(&spec.Volumes[i])
	}
	if spec.Resources != nil {
		roundResourceList(spec.Resources.Limits)
		roundResourceList(spec.Resources.Requests)
	}
	roundResourceList(spec.Overhead)

	// SetDefaults_Pod
	// A negative grace becomes 1 (defaults.go:166): the sleep action of a
	// hook is then validated against 1.
	if *spec.TerminationGracePeriodSeconds < 0 {
		spec.TerminationGracePeriodSeconds = ptrTo(int64(1))
	}
	for i := range spec.Containers {
		defaultRequestsFromLimits(&spec.Containers[i].Resources)
	}
	for i := range spec.InitContainers {
		defaultRequestsFromLimits(&spec.InitContainers[i].Resources)
	}
	defaultPodLevelResources(pod)
	if spec.EnableServiceLinks == nil {
		spec.EnableServiceLinks = ptrTo(corev1.DefaultEnableServiceLinks)
	}
	if spec.HostNetwork {
		defaultHostNetworkPorts(spec.Containers)
		defaultHostNetworkPorts(spec.InitContainers)
	}
	// H2CContainerProbe is off, so SetDefaults_Pod gives httpGet no
	// protocol; the strategy's PrepareForCreate then drops the fields.
	for i := range spec.InitContainers {
		dropDisabledHandlerFields(&spec.InitContainers[i])
	}
	for i := range spec.Containers {
		dropDisabledHandlerFields(&spec.Containers[i])
	}
	for i := range spec.EphemeralContainers {
		dropDisabledHandlerFields((*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
}

func defaultContainer(c *corev1.Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}
	for i := range c.Env {
		if vf := c.Env[i].ValueFrom; vf != nil {
			defaultFieldRef(vf.FieldRef)
			if vf.FileKeyRef != nil && vf.FileKeyRef.Optional == nil {
				vf.FileKeyRef.Optional = ptrTo(false)
			}
		}
	}
	roundResourceList(c.Resources.Limits)
	roundResourceList(c.Resources.Requests)
	defaultProbe(c.LivenessProbe)
	defaultProbe(c.ReadinessProbe)
	defaultProbe(c.StartupProbe)
	if lc := c.Lifecycle; lc != nil {
		defaultHandler(lc.PostStart)
		defaultHandler(lc.PreStop)
	}
}

// defaultPullPolicy is the tag rule: ":latest" or no tag means Always,
// anything else (another tag, or a digest) IfNotPresent.
func defaultPullPolicy(image string) corev1.PullPolicy {
	if imageTag(image) == "latest" {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// imageTag is the tag as kubelet's parsers.ParseImageName sees it: "latest"
// when the reference has neither tag nor digest, "" when it has only a
// digest.
func imageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
		if tag := tagOf(image); tag != "" {
			return tag
		}
		return ""
	}
	if tag := tagOf(image); tag != "" {
		return tag
	}
	return "latest"
}

// tagOf returns what follows the last ':' after the last '/', so that a
// registry port ("localhost:5000/busybox") is not taken for a tag.
func tagOf(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}

func defaultProbe(p *corev1.Probe) {
	if p == nil {
		return
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHTTPGet(p.HTTPGet)
	if p.GRPC != nil && p.GRPC.Service == nil {
		p.GRPC.Service = ptrTo("")
	}
}

// dropDisabledHandlerFields is the probe and hook part of the pod
// strategy's dropDisabledFields (k8s.io/kubernetes@v1.37.2
// pkg/api/pod/util.go): the fields of alpha features, off by default in
// v1.37, are cleared on create, silently, so kubelet (and podboot) never
// see them: httpGet.protocol (H2CContainerProbe, dropHTTPProbeProtocol),
// a probe's grpc.mode (GRPCContainerProbeTLS,
// dropDisabledGRPCContainerProbeTLS) and lifecycle.stopSignal
// (ContainerStopSignals, dropContainerStopSignals, which also drops a
// lifecycle left empty, so that an init container with only a stopSignal
// is not refused for having a lifecycle).
func dropDisabledHandlerFields(c *corev1.Container) {
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p == nil {
			continue
		}
		if p.HTTPGet != nil {
			p.HTTPGet.Protocol = nil
		}
		if p.GRPC != nil {
			p.GRPC.Mode = nil
		}
	}
	lc := c.Lifecycle
	if lc == nil {
		return
	}
	for _, h := range []*corev1.LifecycleHandler{lc.PostStart, lc.PreStop} {
		if h != nil && h.HTTPGet != nil {
			h.HTTPGet.Protocol = nil
		}
	}
	if lc.StopSignal != nil {
		lc.StopSignal = nil
		if *lc == (corev1.Lifecycle{}) {
			c.Lifecycle = nil
		}
	}
}

func defaultHandler(h *corev1.LifecycleHandler) {
	if h != nil {
		defaultHTTPGet(h.HTTPGet)
	}
}

func defaultHTTPGet(g *corev1.HTTPGetAction) {
	if g == nil {
		return
	}
	if g.Path == "" {
		g.Path = "/"
	}
	if g.Scheme == "" {
		g.Scheme = corev1.URISchemeHTTP
	}
}

func defaultFieldRef(f *corev1.ObjectFieldSelector) {
	if f != nil && f.APIVersion == "" {
		f.APIVersion = "v1"
	}
}

func defaultVolume(v *corev1.Volume) {
	src := &v.VolumeSource
	if countVolumeSources(src) == 0 {
		src.EmptyDir = &corev1.EmptyDirVolumeSource{}
	}
	if s := src.Secret; s != nil && s.DefaultMode == nil {
		s.DefaultMode = ptrTo(corev1.SecretVolumeSourceDefaultMode)
	}
	if c := src.ConfigMap; c != nil && c.DefaultMode == nil {
		c.DefaultMode = ptrTo(corev1.ConfigMapVolumeSourceDefaultMode)
	}
	if d := src.DownwardAPI; d != nil {
		if d.DefaultMode == nil {
			d.DefaultMode = ptrTo(corev1.DownwardAPIVolumeSourceDefaultMode)
		}
		for i := range d.Items {
			defaultFieldRef(d.Items[i].FieldRef)
		}
	}
	if p := src.Projected; p != nil {
		if p.DefaultMode == nil {
			p.DefaultMode = ptrTo(corev1.ProjectedVolumeSourceDefaultMode)
		}
		for i := range p.Sources {
			if d := p.Sources[i].DownwardAPI; d != nil {
				for j := range d.Items {
					defaultFieldRef(d.Items[j].FieldRef)
				}
			}
			if t := p.Sources[i].ServiceAccountToken; t != nil && t.ExpirationSeconds == nil {
				t.ExpirationSeconds = ptrTo(int64(3600))
			}
		}
	}
	if h := src.HostPath; h != nil && h.Type == nil {
		h.Type = ptrTo(corev1.HostPathUnset)
	}
}

// SetDefaults_ResourceList rounds every quantity up to milli scale.
func roundResourceList(l corev1.ResourceList) {
	for k, q := range l {
		q.RoundUp(-3)
		l[k] = q
	}
}

func defaultRequestsFromLimits(r *corev1.ResourceRequirements) {
	if r.Limits == nil {
		return
	}
	if r.Requests == nil {
		r.Requests = corev1.ResourceList{}
	}
	for k, v := range r.Limits {
		if _, ok := r.Requests[k]; !ok {
			r.Requests[k] = v.DeepCopy()
		}
	}
}

func defaultHostNetworkPorts(cs []corev1.Container) {
	for i := range cs {
		for j := range cs[i].Ports {
			if cs[i].Ports[j].HostPort == 0 {
				cs[i].Ports[j].HostPort = cs[i].Ports[j].ContainerPort
			}
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// podLevelResource is resourcehelper.IsSupportedPodLevelResource.
func podLevelResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory || isHugePages(name)
}

func isHugePages(name corev1.ResourceName) bool {
	return strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// defaultPodLevelResources is SetDefaults_Pod's pod-level part (the
// PodLevelResources feature, on by default): hugepage limits, then requests,
// then limits, each only when spec.resources is partly given.
func defaultPodLevelResources(pod *corev1.Pod) {
	r := pod.Spec.Resources
	if r == nil || (len(r.Limits) == 0 && len(r.Requests) == 0) {
		return
	}
	ctrLimits := aggregateContainers(pod, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Limits })
	ctrRequests := aggregateContainers(pod, func(c *corev1.Container) corev1.ResourceList { return c.Resources.Requests })

	// defaultHugePagePodLimits
	for k, v := range ctrLimits {
		if !isHugePages(k) {
			continue
		}
		if _, ok := r.Requests[k]; ok {
			continue
		}
		if _, ok := r.Limits[k]; !ok {
			if r.Limits == nil {
				r.Limits = corev1.ResourceList{}
			}
			r.Limits[k] = v.DeepCopy()
		}
	}

	// defaultPodRequests
	if len(r.Limits) > 0 {
		reqs := r.Requests
		if reqs == nil {
			reqs = corev1.ResourceList{}
		}
		for k, v := range ctrRequests {
			// Only overcommittable resources (not hugepages) come from the containers.
			if _, ok := reqs[k]; !ok && podLevelResource(k) && !isHugePages(k) {
				reqs[k] = v.DeepCopy()
			}
		}
		for k, v := range r.Limits {
			if _, ok := reqs[k]; !ok && podLevelResource(k) {
				reqs[k] = v.DeepCopy()
			}
		}
		if len(reqs) > 0 {
			r.Requests = reqs
		}
	}

	// defaultPodLimits: only when no pod-level limit is set but requests are.
	if len(r.Limits) == 0 && len(r.Requests) > 0 {
		limits := corev1.ResourceList{}
		for k, v := range ctrLimits {
			if !podLevelResource(k) || isHugePages(k) || !allContainersLimit(pod, k) {
				continue
			}
			limits[k] = v.DeepCopy()
		}
		if len(limits) > 0 {
			r.Limits = limits
		}
	}
}

// aggregateContainers is resourcehelper's effective pod value: the larger
// of the sum over regular and sidecar containers and, for each ordinary
// init container, its own value plus the sidecars started before it.
func aggregateContainers(pod *corev1.Pod, get func(*corev1.Container) corev1.ResourceList) corev1.ResourceList {
	sum := corev1.ResourceList{}
	add := func(into corev1.ResourceList, l corev1.ResourceList) {
		for k, v := range l {
			q := into[k]
			q.Add(v)
			into[k] = q
		}
	}
	for i := range pod.Spec.Containers {
		add(sum, get(&pod.Spec.Containers[i]))
	}
	sidecars := corev1.ResourceList{}
	initMax := corev1.ResourceList{}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(sum, get(c))
			add(sidecars, get(c))
			continue
		}
		during := corev1.ResourceList{}
		add(during, sidecars)
		add(during, get(c))
		for k, v := range during {
			if cur, ok := initMax[k]; !ok || v.Cmp(cur) > 0 {
				initMax[k] = v
			}
		}
	}
	for k, v := range initMax {
		if cur, ok := sum[k]; !ok || v.Cmp(cur) > 0 {
			sum[k] = v
		}
	}
	return sum
}

func allContainersLimit(pod *corev1.Pod, name corev1.ResourceName) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if _, ok := cs[i].Resources.Limits[name]; !ok {
				return false
			}
		}
	}
	return true
}

func defaultConfigMap(cm *corev1.ConfigMap) {
	if cm.Namespace == "" {
		cm.Namespace = metav1.NamespaceDefault
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
}

// defaultSecret also folds stringData into data, as the v1 conversion does:
// stringData wins over data for the same key, and is then dropped.
func defaultSecret(s *corev1.Secret) {
	if s.Namespace == "" {
		s.Namespace = metav1.NamespaceDefault
	}
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// defaultNamespace is SetDefaults_Namespace, SetDefaults_NamespaceStatus and
// the namespace strategy's PrepareForCreate (the "kubernetes" finalizer).
// Namespaces are cluster-scoped: a metadata.namespace is dropped.
func defaultNamespace(ns *corev1.Namespace) {
	ns.Namespace = ""
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
}

// quantityLE reports a <= b.
func quantityLE(a, b resource.Quantity) bool { return a.Cmp(b) <= 0 }
