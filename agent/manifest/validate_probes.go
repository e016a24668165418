package manifest

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Probes and lifecycle hooks are validated as the API server validates
// them; the line numbers below are those of
// k8s.io/kubernetes@v1.37.2/pkg/apis/core/validation/validation.go. The
// rules, their order, the field paths and the messages are the same, so
// that a manifest the API server would refuse never reaches the prober or
// the hook runner, and its error reads as kubectl's would. The alpha
// fields of disabled features (httpGet.protocol, grpc.mode,
// lifecycle.stopSignal) are gone before this runs (dropDisabledHandlerFields),
// as they are on the API server, so their rules are not reproduced.

// validateContainerHandlers validates c's lifecycle hooks and probes.
// gracePeriod is the pod's (defaulted) terminationGracePeriodSeconds, the
// bound of a sleep action. An init container may have them only when it is
// restartable (a sidecar, restartPolicy Always); others are refused without
// looking further (validateInitContainers, 3956-3980). A regular container's
// are validated (validateContainers, 4169-4178).
func validateContainerHandlers(c *corev1.Container, path *field.Path, gracePeriod *int64, initContainer bool) field.ErrorList {
	var allErrs field.ErrorList
	restartAlways := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
	if initContainer && !restartAlways {
		const msg = "may not be set for init containers without restartPolicy=Always"
		if c.Lifecycle != nil {
			allErrs = append(allErrs, field.Forbidden(path.Child("lifecycle"), msg))
		}
		if c.LivenessProbe != nil {
			allErrs = append(allErrs, field.Forbidden(path.Child("livenessProbe"), msg))
		}
		if c.ReadinessProbe != nil {
			allErrs = append(allErrs, field.Forbidden(path.Child("readinessProbe"), msg))
		}
		if c.StartupProbe != nil {
			allErrs = append(allErrs, field.Forbidden(path.Child("startupProbe"), msg))
		}
		return allErrs
	}
	if c.Lifecycle != nil {
		allErrs = append(allErrs, validateLifecycle(c.Lifecycle, gracePeriod, path.Child("lifecycle"))...)
	}
	allErrs = append(allErrs, validateLivenessProbe(c.LivenessProbe, gracePeriod, path.Child("livenessProbe"))...)
	allErrs = append(allErrs, validateReadinessProbe(c.ReadinessProbe, gracePeriod, path.Child("readinessProbe"))...)
	allErrs = append(allErrs, validateStartupProbe(c.StartupProbe, gracePeriod, path.Child("startupProbe"))...)
	return allErrs
}

// validateLivenessProbe is 3361: kubelet restarts on the first success
// after failures only if one success is enough.
func validateLivenessProbe(probe *corev1.Probe, gracePeriod *int64, path *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, path)
	if probe.SuccessThreshold != 1 {
		allErrs = append(allErrs, field.Invalid(path.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return allErrs
}

// validateReadinessProbe is 3374: a readiness failure kills nothing, so a
// kill's grace period has no meaning there.
func validateReadinessProbe(probe *corev1.Probe, gracePeriod *int64, path *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, path)
	if probe.TerminationGracePeriodSeconds != nil {
		allErrs = append(allErrs, field.Invalid(path.Child("terminationGracePeriodSeconds"), probe.TerminationGracePeriodSeconds, "must not be set for readinessProbes"))
	}
	return allErrs
}

// validateStartupProbe is 3387.
func validateStartupProbe(probe *corev1.Probe, gracePeriod *int64, path *field.Path) field.ErrorList {
	if probe == nil {
		return nil
	}
	allErrs := validateProbe(probe, gracePeriod, path)
	if probe.SuccessThreshold != 1 {
		allErrs = append(allErrs, field.Invalid(path.Child("successThreshold"), probe.SuccessThreshold, "must be 1"))
	}
	return allErrs
}

// validateProbe is 3400. The numbers are checked after defaulting, so a
// zero (or an absent field) is already the default and only a negative
// one is an error.
func validateProbe(probe *corev1.Probe, gracePeriod *int64, path *field.Path) field.ErrorList {
	h := &probe.ProbeHandler
	allErrs := validateHandler(commonHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, GRPC: h.GRPC}, gracePeriod, path)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(probe.InitialDelaySeconds), path.Child("initialDelaySeconds"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(probe.TimeoutSeconds), path.Child("timeoutSeconds"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(probe.PeriodSeconds), path.Child("periodSeconds"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(probe.SuccessThreshold), path.Child("successThreshold"))...)
	allErrs = append(allErrs, apivalidation.ValidateNonnegativeField(int64(probe.FailureThreshold), path.Child("failureThreshold"))...)
	if g := probe.TerminationGracePeriodSeconds; g != nil && *g <= 0 {
		allErrs = append(allErrs, field.Invalid(path.Child("terminationGracePeriodSeconds"), *g, "must be greater than 0"))
	}
	return allErrs
}

// validateLifecycle is 3706 without its stopSignal rule (the field is
// dropped while ContainerStopSignals is off, its default in v1.37).
func validateLifecycle(lc *corev1.Lifecycle, gracePeriod *int64, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, hook := range []struct {
		name string
		h    *corev1.LifecycleHandler
	}{{"postStart", lc.PostStart}, {"preStop", lc.PreStop}} {
		if h := hook.h; h != nil {
			allErrs = append(allErrs, validateHandler(commonHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket, Sleep: h.Sleep}, gracePeriod, path.Child(hook.name))...)
		}
	}
	return allErrs
}

// commonHandler is 3452: the handlers of a probe (no sleep) and of a hook
// (no grpc) validated by one function, as the API server does.
type commonHandler struct {
	Exec      *corev1.ExecAction
	HTTPGet   *corev1.HTTPGetAction
	TCPSocket *corev1.TCPSocketAction
	GRPC      *corev1.GRPCAction
	Sleep     *corev1.SleepAction
}

// validateHandler is 3616: exactly one handler; each one after the first
// is refused at its own path, and only the first is validated.
func validateHandler(h commonHandler, gracePeriod *int64, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	one := func(set bool, name string, validate func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			allErrs = append(allErrs, field.Forbidden(path.Child(name), "may not specify more than 1 handler type"))
			return
		}
		n++
		allErrs = append(allErrs, validate(path.Child(name))...)
	}
	one(h.Exec != nil, "exec", func(p *field.Path) field.ErrorList { return validateExecAction(h.Exec, p) })
	one(h.HTTPGet != nil, "httpGet", func(p *field.Path) field.ErrorList { return validateHTTPGetAction(h.HTTPGet, p) })
	one(h.TCPSocket != nil, "tcpSocket", func(p *field.Path) field.ErrorList { return validatePortNumOrName(h.TCPSocket.Port, p.Child("port")) })
	one(h.GRPC != nil, "grpc", func(p *field.Path) field.ErrorList { return validateGRPCAction(h.GRPC, p) })
	one(h.Sleep != nil, "sleep", func(p *field.Path) field.ErrorList { return validateSleepAction(h.Sleep, gracePeriod, p) })
	if n == 0 {
		allErrs = append(allErrs, field.Required(path, "must specify a handler type"))
	}
	return allErrs
}

// validateExecAction is 3549.
func validateExecAction(exec *corev1.ExecAction, path *field.Path) field.ErrorList {
	if len(exec.Command) == 0 {
		return field.ErrorList{field.Required(path.Child("command"), "")}
	}
	return nil
}

// validateHTTPGetAction is 3562 without the protocol rules (httpGet.protocol
// is dropped while H2CContainerProbe is off). The path rule cannot fail
// after defaulting ("/"), but a caller may validate an undefaulted action.
// Header names are checked, not their values, and the error's path is
// httpHeaders itself, not the header's index.
func validateHTTPGetAction(http *corev1.HTTPGetAction, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(http.Path) == 0 {
		allErrs = append(allErrs, field.Required(path.Child("path"), ""))
	}
	allErrs = append(allErrs, validatePortNumOrName(http.Port, path.Child("port"))...)
	// supportedHTTPSchemes (3557), in sets.List's (sorted) order for the message.
	if schemes := []corev1.URIScheme{corev1.URISchemeHTTP, corev1.URISchemeHTTPS}; !slices.Contains(schemes, http.Scheme) {
		allErrs = append(allErrs, field.NotSupported(path.Child("scheme"), http.Scheme, schemes))
	}
	for _, header := range http.HTTPHeaders {
		for _, msg := range validation.IsHTTPHeaderName(header.Name) {
			allErrs = append(allErrs, field.Invalid(path.Child("httpHeaders"), header.Name, msg))
		}
	}
	return allErrs
}

// validatePortNumOrName is ValidatePortNumOrName (3588): a number in
// 1-65535, or an IANA service name. A quoted number ("8080") is a name,
// and fails for having no letter, as on the API server. Whether a name is
// one of the container's ports is not checked there either: the probe
// errors at run time (kubelet's "probe errored").
func validatePortNumOrName(port intstr.IntOrString, path *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch port.Type {
	case intstr.Int:
		for _, msg := range validation.IsValidPortNum(port.IntValue()) {
			allErrs = append(allErrs, field.Invalid(path, port.IntValue(), msg))
		}
	case intstr.String:
		for _, msg := range validation.IsValidPortName(port.StrVal) {
			allErrs = append(allErrs, field.Invalid(path, port.StrVal, msg))
		}
	default:
		allErrs = append(allErrs, field.InternalError(path, fmt.Errorf("unknown type: %v", port.Type)))
	}
	return allErrs
}

// validateGRPCAction is 3608 without the mode rule (grpc.mode is dropped
// while GRPCContainerProbeTLS is off).
func validateGRPCAction(grpc *corev1.GRPCAction, path *field.Path) field.ErrorList {
	return validatePortNumOrName(intstr.FromInt32(grpc.Port), path.Child("port"))
}

// validateSleepAction is 3478: zero is allowed (PodLifecycleSleepActionAllowZero
// is GA), and so is the pod's whole grace period, which kubelet then
// spends sleeping.
func validateSleepAction(sleep *corev1.SleepAction, gracePeriod *int64, path *field.Path) field.ErrorList {
	if gracePeriod != nil && (sleep.Seconds < 0 || sleep.Seconds > *gracePeriod) {
		return field.ErrorList{field.Invalid(path, sleep.Seconds,
			fmt.Sprintf("must be non-negative and less than terminationGracePeriodSeconds (%d)", *gracePeriod))}
	}
	return nil
}
