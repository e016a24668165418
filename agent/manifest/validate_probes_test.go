package manifest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podboot/podboot/internal/testenv"
)

// ctrDoc is a pod whose one container has the given extra fields (flow
// style, e.g. "livenessProbe: {exec: {command: [\"true\"]}}"), plus extra
// spec lines.
func ctrDoc(fields string, spec ...string) string {
	return specDoc("p", append([]string{"containers: [{name: c, image: busybox, " + fields + "}]"}, spec...)...)
}

// TestProbeAndHookValidation has one case per rule of the API server's
// probe and lifecycle validation (k8s.io/kubernetes v1.37.2,
// pkg/apis/core/validation/validation.go), with its exact field path and
// message.
func TestProbeAndHookValidation(t *testing.T) {
	const execTrue = `exec: {command: ["true"]}`
	tests := []struct {
		name      string
		doc       string
		wantField string
		wantErr   string // the DocumentError's Err message
	}{
		// validateHandler
		{"probe needs a handler", ctrDoc("readinessProbe: {periodSeconds: 3}"),
			"spec.containers[0].readinessProbe", "spec.containers[0].readinessProbe: Required value: must specify a handler type"},
		{"hook needs a handler", ctrDoc("lifecycle: {postStart: {}}"),
			"spec.containers[0].lifecycle.postStart", "spec.containers[0].lifecycle.postStart: Required value: must specify a handler type"},
		{"probe with two handlers: the second is forbidden", ctrDoc("livenessProbe: {" + execTrue + ", tcpSocket: {port: 80}}"),
			"spec.containers[0].livenessProbe.tcpSocket", "spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"},
		{"probe with three handlers: one error each after the first", ctrDoc("startupProbe: {httpGet: {port: 80}, tcpSocket: {port: 80}, grpc: {port: 80}}"),
			"spec.containers[0].startupProbe.tcpSocket", "[spec.containers[0].startupProbe.tcpSocket: Forbidden: may not specify more than 1 handler type, spec.containers[0].startupProbe.grpc: Forbidden: may not specify more than 1 handler type]"},
		{"hook with two handlers", ctrDoc("lifecycle: {preStop: {" + execTrue + ", sleep: {seconds: 1}}}"),
			"spec.containers[0].lifecycle.preStop.sleep", "spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type"},
		{"the second handler is not validated", ctrDoc("livenessProbe: {" + execTrue + ", httpGet: {port: 0}}"),
			"spec.containers[0].livenessProbe.httpGet", "spec.containers[0].livenessProbe.httpGet: Forbidden: may not specify more than 1 handler type"},

		// validateExecAction
		{"exec needs a command", ctrDoc("livenessProbe: {exec: {}}"),
			"spec.containers[0].livenessProbe.exec.command", "spec.containers[0].livenessProbe.exec.command: Required value"},
		{"exec hook needs a command", ctrDoc("lifecycle: {postStart: {exec: {command: []}}}"),
			"spec.containers[0].lifecycle.postStart.exec.command", "spec.containers[0].lifecycle.postStart.exec.command: Required value"},

		// validateHTTPGetAction, ValidatePortNumOrName
		{"httpGet port is required", ctrDoc("livenessProbe: {httpGet: {path: /healthz}}"),
			"spec.containers[0].livenessProbe.httpGet.port", "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"httpGet port number range", ctrDoc("readinessProbe: {httpGet: {port: 65536}}"),
			"spec.containers[0].readinessProbe.httpGet.port", "spec.containers[0].readinessProbe.httpGet.port: Invalid value: 65536: must be between 1 and 65535, inclusive"},
		{"httpGet port name syntax", ctrDoc("livenessProbe: {httpGet: {port: http_port}}"),
			"spec.containers[0].livenessProbe.httpGet.port", `spec.containers[0].livenessProbe.httpGet.port: Invalid value: "http_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`},
		{"a quoted port number is a port name, which needs a letter", ctrDoc(`livenessProbe: {httpGet: {port: "8080"}}`),
			"spec.containers[0].livenessProbe.httpGet.port", `spec.containers[0].livenessProbe.httpGet.port: Invalid value: "8080": must contain at least one letter (a-z)`},
		{"port name at most 15 characters", ctrDoc("livenessProbe: {httpGet: {port: a-very-long-port-name}}"),
			"spec.containers[0].livenessProbe.httpGet.port", `spec.containers[0].livenessProbe.httpGet.port: Invalid value: "a-very-long-port-name": must be no more than 15 characters`},
		{"httpGet scheme", ctrDoc("livenessProbe: {httpGet: {port: 80, scheme: FTP}}"),
			"spec.containers[0].livenessProbe.httpGet.scheme", `spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "FTP": supported values: "HTTP", "HTTPS"`},
		{"httpGet scheme is case-sensitive", ctrDoc("livenessProbe: {httpGet: {port: 80, scheme: https}}"),
			"spec.containers[0].livenessProbe.httpGet.scheme", `spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: "https": supported values: "HTTP", "HTTPS"`},
		{"httpGet header name", ctrDoc(`livenessProbe: {httpGet: {port: 80, httpHeaders: [{name: Good, value: x}, {name: "Bad Header", value: b}]}}`),
			"spec.containers[0].livenessProbe.httpGet.httpHeaders", `spec.containers[0].livenessProbe.httpGet.httpHeaders: Invalid value: "Bad Header": a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')`},
		{"httpGet hook port", ctrDoc("lifecycle: {preStop: {httpGet: {path: /quit, port: -1}}}"),
			"spec.containers[0].lifecycle.preStop.httpGet.port", "spec.containers[0].lifecycle.preStop.httpGet.port: Invalid value: -1: must be between 1 and 65535, inclusive"},

		// validateTCPSocketAction
		{"tcpSocket port is required", ctrDoc("livenessProbe: {tcpSocket: {}}"),
			"spec.containers[0].livenessProbe.tcpSocket.port", "spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"tcpSocket port name", ctrDoc("readinessProbe: {tcpSocket: {port: -redis}}"),
			"spec.containers[0].readinessProbe.tcpSocket.port", `spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: "-redis": must not begin or end with a hyphen`},
		{"tcpSocket hook port", ctrDoc("lifecycle: {postStart: {tcpSocket: {port: 70000}}}"),
			"spec.containers[0].lifecycle.postStart.tcpSocket.port", "spec.containers[0].lifecycle.postStart.tcpSocket.port: Invalid value: 70000: must be between 1 and 65535, inclusive"},

		// validateGRPCAction
		{"grpc port is required", ctrDoc("livenessProbe: {grpc: {service: etcd}}"),
			"spec.containers[0].livenessProbe.grpc.port", "spec.containers[0].livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive"},
		{"grpc port range", ctrDoc("startupProbe: {grpc: {port: 65536}}"),
			"spec.containers[0].startupProbe.grpc.port", "spec.containers[0].startupProbe.grpc.port: Invalid value: 65536: must be between 1 and 65535, inclusive"},

		// validateSleepAction, with the pod's (defaulted) grace period
		{"sleep longer than the default grace", ctrDoc("lifecycle: {preStop: {sleep: {seconds: 31}}}"),
			"spec.containers[0].lifecycle.preStop.sleep", "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 31: must be non-negative and less than terminationGracePeriodSeconds (30)"},
		{"sleep longer than the pod's grace", ctrDoc("lifecycle: {postStart: {sleep: {seconds: 6}}}", "terminationGracePeriodSeconds: 5"),
			"spec.containers[0].lifecycle.postStart.sleep", "spec.containers[0].lifecycle.postStart.sleep: Invalid value: 6: must be non-negative and less than terminationGracePeriodSeconds (5)"},
		{"negative sleep", ctrDoc("lifecycle: {preStop: {sleep: {seconds: -1}}}"),
			"spec.containers[0].lifecycle.preStop.sleep", "spec.containers[0].lifecycle.preStop.sleep: Invalid value: -1: must be non-negative and less than terminationGracePeriodSeconds (30)"},
		{"a negative pod grace is defaulted to 1 before the sleep is checked", ctrDoc("lifecycle: {preStop: {sleep: {seconds: 2}}}", "terminationGracePeriodSeconds: -7"),
			"spec.containers[0].lifecycle.preStop.sleep", "spec.containers[0].lifecycle.preStop.sleep: Invalid value: 2: must be non-negative and less than terminationGracePeriodSeconds (1)"},

		// Handlers a probe or a hook does not have are unknown fields.
		{"a probe has no sleep", ctrDoc("livenessProbe: {sleep: {seconds: 1}}"),
			"spec.containers[0].livenessProbe.sleep", `strict decoding error: unknown field "spec.containers[0].livenessProbe.sleep"`},
		{"a hook has no grpc", ctrDoc("lifecycle: {postStart: {grpc: {port: 80}}}"),
			"spec.containers[0].lifecycle.postStart.grpc", `strict decoding error: unknown field "spec.containers[0].lifecycle.postStart.grpc"`},

		// validateProbe: non-negative numbers, probe-level grace
		{"initialDelaySeconds non-negative", ctrDoc("livenessProbe: {" + execTrue + ", initialDelaySeconds: -1}"),
			"spec.containers[0].livenessProbe.initialDelaySeconds", "spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"timeoutSeconds non-negative", ctrDoc("readinessProbe: {" + execTrue + ", timeoutSeconds: -1}"),
			"spec.containers[0].readinessProbe.timeoutSeconds", "spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -1: must be greater than or equal to 0"},
		{"periodSeconds non-negative", ctrDoc("startupProbe: {" + execTrue + ", periodSeconds: -10}"),
			"spec.containers[0].startupProbe.periodSeconds", "spec.containers[0].startupProbe.periodSeconds: Invalid value: -10: must be greater than or equal to 0"},
		{"successThreshold non-negative", ctrDoc("readinessProbe: {" + execTrue + ", successThreshold: -1}"),
			"spec.containers[0].readinessProbe.successThreshold", "spec.containers[0].readinessProbe.successThreshold: Invalid value: -1: must be greater than or equal to 0"},
		{"failureThreshold non-negative", ctrDoc("livenessProbe: {" + execTrue + ", failureThreshold: -3}"),
			"spec.containers[0].livenessProbe.failureThreshold", "spec.containers[0].livenessProbe.failureThreshold: Invalid value: -3: must be greater than or equal to 0"},
		{"probe grace must be positive", ctrDoc("livenessProbe: {" + execTrue + ", terminationGracePeriodSeconds: 0}"),
			"spec.containers[0].livenessProbe.terminationGracePeriodSeconds", "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"},
		{"startup probe grace must be positive", ctrDoc("startupProbe: {" + execTrue + ", terminationGracePeriodSeconds: -5}"),
			"spec.containers[0].startupProbe.terminationGracePeriodSeconds", "spec.containers[0].startupProbe.terminationGracePeriodSeconds: Invalid value: -5: must be greater than 0"},

		// validateLivenessProbe, validateStartupProbe, validateReadinessProbe
		{"liveness successThreshold must be 1", ctrDoc("livenessProbe: {" + execTrue + ", successThreshold: 2}"),
			"spec.containers[0].livenessProbe.successThreshold", "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"},
		{"startup successThreshold must be 1", ctrDoc("startupProbe: {" + execTrue + ", successThreshold: 3}"),
			"spec.containers[0].startupProbe.successThreshold", "spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"},
		{"negative liveness successThreshold: both errors", ctrDoc("livenessProbe: {" + execTrue + ", successThreshold: -1}"),
			"spec.containers[0].livenessProbe.successThreshold", "[spec.containers[0].livenessProbe.successThreshold: Invalid value: -1: must be greater than or equal to 0, spec.containers[0].livenessProbe.successThreshold: Invalid value: -1: must be 1]"},
		{"readiness probe may not set a grace", ctrDoc("readinessProbe: {" + execTrue + ", terminationGracePeriodSeconds: 10}"),
			"spec.containers[0].readinessProbe.terminationGracePeriodSeconds", "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 10: must not be set for readinessProbes"},
		{"readiness probe with a zero grace: both errors", ctrDoc("readinessProbe: {" + execTrue + ", terminationGracePeriodSeconds: 0}"),
			"spec.containers[0].readinessProbe.terminationGracePeriodSeconds", "[spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0, spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 0: must not be set for readinessProbes]"},
		{"the handler's errors come before the numbers'", ctrDoc("livenessProbe: {httpGet: {port: 0}, periodSeconds: -1}"),
			"spec.containers[0].livenessProbe.httpGet.port", "[spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive, spec.containers[0].livenessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0]"},
		{"lifecycle before liveness before readiness before startup", ctrDoc("startupProbe: {exec: {}}, readinessProbe: {exec: {}}, livenessProbe: {exec: {}}, lifecycle: {preStop: {exec: {}}}"),
			"spec.containers[0].lifecycle.preStop.exec.command", "[spec.containers[0].lifecycle.preStop.exec.command: Required value, spec.containers[0].livenessProbe.exec.command: Required value, spec.containers[0].readinessProbe.exec.command: Required value, spec.containers[0].startupProbe.exec.command: Required value]"},
		{"second container's probe", specDoc("p", "containers: [{name: a, image: busybox}, {name: b, image: busybox, livenessProbe: {tcpSocket: {port: 0}}}]"),
			"spec.containers[1].livenessProbe.tcpSocket.port", "spec.containers[1].livenessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive"},

		// validateInitContainers: only restartable init containers (sidecars) have probes and hooks
		{"init container liveness probe", specDoc("p", "initContainers: [{name: i, image: busybox, livenessProbe: {"+execTrue+"}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].livenessProbe", "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"init container readiness probe", specDoc("p", "initContainers: [{name: i, image: busybox, readinessProbe: {"+execTrue+"}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].readinessProbe", "spec.initContainers[0].readinessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"init container startup probe", specDoc("p", "initContainers: [{name: i, image: busybox, startupProbe: {"+execTrue+"}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].startupProbe", "spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"init container lifecycle", specDoc("p", "initContainers: [{name: i, image: busybox, lifecycle: {postStart: {"+execTrue+"}}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].lifecycle", "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"init container with an empty lifecycle", specDoc("p", "initContainers: [{name: i, image: busybox, lifecycle: {}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].lifecycle", "spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always"},
		{"init container: forbidden, not validated", specDoc("p", "initContainers: [{name: i, image: busybox, lifecycle: {preStop: {}}, livenessProbe: {exec: {}}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].lifecycle", "[spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always, spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always]"},
		{"sidecar liveness successThreshold must be 1", specDoc("p", "initContainers: [{name: s, image: busybox, restartPolicy: Always, livenessProbe: {"+execTrue+", successThreshold: 2}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].livenessProbe.successThreshold", "spec.initContainers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"},
		{"sidecar readiness probe may not set a grace", specDoc("p", "initContainers: [{name: s, image: busybox, restartPolicy: Always, readinessProbe: {"+execTrue+", terminationGracePeriodSeconds: 3}}]", "containers: [{name: c, image: busybox}]"),
			"spec.initContainers[0].readinessProbe.terminationGracePeriodSeconds", "spec.initContainers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 3: must not be set for readinessProbes"},
		{"sidecar hook sleep within the pod's grace", specDoc("p", "initContainers: [{name: s, image: busybox, restartPolicy: Always, lifecycle: {preStop: {sleep: {seconds: 11}}}}]", "containers: [{name: c, image: busybox}]", "terminationGracePeriodSeconds: 10"),
			"spec.initContainers[0].lifecycle.preStop.sleep", "spec.initContainers[0].lifecycle.preStop.sleep: Invalid value: 11: must be non-negative and less than terminationGracePeriodSeconds (10)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Decode("v.yaml", []byte(tt.doc), testOpts)
			if len(s.Errors) != 1 {
				t.Fatalf("want exactly one document error, got %+v", summarize(s))
			}
			if len(s.Pods) != 0 {
				t.Errorf("rejected document still yielded %d pods", len(s.Pods))
			}
			got := []string{s.Errors[0].Field, s.Errors[0].Err.Error()}
			if diff := cmp.Diff([]string{tt.wantField, tt.wantErr}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// handlers is what a container says about probes and hooks.
type handlers struct {
	Liveness, Readiness, Startup *corev1.Probe
	Lifecycle                    *corev1.Lifecycle
}

// handlersOf maps "containers[i]" and "initContainers[i]" (with the
// container's name) to their probes and hooks, leaving out containers that
// have none.
func handlersOf(pod *corev1.Pod) map[string]handlers {
	out := map[string]handlers{}
	add := func(kind string, cs []corev1.Container) {
		for _, c := range cs {
			h := handlers{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe, c.Lifecycle}
			if h != (handlers{}) {
				out[kind+"/"+c.Name] = h
			}
		}
	}
	add("containers", pod.Spec.Containers)
	add("initContainers", pod.Spec.InitContainers)
	return out
}

// probeWith is a probe with the API server's defaults (SetDefaults_Probe)
// and the given handler; change adjusts what a manifest set.
func probeWith(h corev1.ProbeHandler, change func(*corev1.Probe)) *corev1.Probe {
	p := &corev1.Probe{ProbeHandler: h, TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3}
	if change != nil {
		change(p)
	}
	return p
}

func execHandler(cmd ...string) corev1.ProbeHandler {
	return corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}
}

func tcpHandler(port intstr.IntOrString) corev1.ProbeHandler {
	return corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: port}}
}

// TestProbeAndHookDefaults checks valid probes and hooks: accepted, with
// the API server's defaults (SetDefaults_Probe, SetDefaults_HTTPGetAction,
// GRPCAction.service's "+default") and without the fields of disabled
// alpha features (dropDisabledFields).
func TestProbeAndHookDefaults(t *testing.T) {
	const execTrue = `exec: {command: ["true"]}`
	sidecar := func(fields string) string {
		return specDoc("p", "initContainers: [{name: s, image: busybox, restartPolicy: Always, "+fields+"}]", "containers: [{name: c, image: busybox}]")
	}
	// inC is the handlers of container c of pod p.
	inC := func(h handlers) map[string]map[string]handlers {
		return map[string]map[string]handlers{"p": {"containers/c": h}}
	}
	httpGet := func(port intstr.IntOrString) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: port, Scheme: corev1.URISchemeHTTP}}
	}
	tests := []struct {
		name string
		doc  string
		want map[string]map[string]handlers // pod name, then handlersOf
	}{
		{"probe defaults", ctrDoc("livenessProbe: {" + execTrue + "}"),
			inC(handlers{Liveness: probeWith(execHandler("true"), nil)})},
		{"explicit values are kept, zero is defaulted", ctrDoc("readinessProbe: {" + execTrue + ", initialDelaySeconds: 4, timeoutSeconds: 0, periodSeconds: 2, successThreshold: 5, failureThreshold: 6}"),
			inC(handlers{Readiness: probeWith(execHandler("true"), func(p *corev1.Probe) {
				p.InitialDelaySeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold = 4, 2, 5, 6
			})})},
		{"probe grace on liveness and startup", ctrDoc("livenessProbe: {" + execTrue + ", terminationGracePeriodSeconds: 1}, startupProbe: {" + execTrue + ", terminationGracePeriodSeconds: 60}"),
			inC(handlers{
				Liveness: probeWith(execHandler("true"), func(p *corev1.Probe) { p.TerminationGracePeriodSeconds = ptrTo(int64(1)) }),
				Startup:  probeWith(execHandler("true"), func(p *corev1.Probe) { p.TerminationGracePeriodSeconds = ptrTo(int64(60)) }),
			})},
		{"httpGet path and scheme", ctrDoc("startupProbe: {httpGet: {port: http}}, ports: [{name: http, containerPort: 80}]"),
			inC(handlers{Startup: probeWith(httpGet(intstr.FromString("http")), nil)})},
		{"httpGet as written", ctrDoc("livenessProbe: {httpGet: {host: 10.0.0.1, path: /ready, port: 8443, scheme: HTTPS, httpHeaders: [{name: X-Token, value: a}]}}"),
			inC(handlers{Liveness: probeWith(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Host: "10.0.0.1", Path: "/ready", Port: intstr.FromInt32(8443), Scheme: corev1.URISchemeHTTPS,
				HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Token", Value: "a"}}}}, nil)})},
		{"port limits are inclusive", ctrDoc("livenessProbe: {tcpSocket: {port: 1}}, readinessProbe: {grpc: {port: 65535, service: liveness}}"),
			inC(handlers{
				Liveness:  probeWith(tcpHandler(intstr.FromInt32(1)), nil),
				Readiness: probeWith(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 65535, Service: ptrTo("liveness")}}, nil),
			})},
		{"grpc service defaults to empty", ctrDoc("livenessProbe: {grpc: {port: 2379}}"),
			inC(handlers{Liveness: probeWith(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 2379, Service: ptrTo("")}}, nil)})},
		{"hooks: httpGet defaulted, tcpSocket accepted, sleep equal to the grace, and zero",
			ctrDoc("lifecycle: {postStart: {httpGet: {port: 80}}, preStop: {sleep: {seconds: 30}}}") +
				"---\n" + specDoc("q", "containers: [{name: c, image: busybox, lifecycle: {postStart: {tcpSocket: {port: 80}}, preStop: {sleep: {seconds: 0}}}}]"),
			map[string]map[string]handlers{
				"p": {"containers/c": {Lifecycle: &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{HTTPGet: httpGet(intstr.FromInt32(80)).HTTPGet},
					PreStop:   &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 30}},
				}}},
				"q": {"containers/c": {Lifecycle: &corev1.Lifecycle{
					PostStart: &corev1.LifecycleHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}},
					PreStop:   &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 0}},
				}}},
			}},
		{"sidecar probes and hooks", sidecar("startupProbe: {" + execTrue + ", failureThreshold: 30}, readinessProbe: {tcpSocket: {port: 80}}, livenessProbe: {httpGet: {port: 80}}, lifecycle: {preStop: {" + execTrue + "}}"),
			map[string]map[string]handlers{"p": {"initContainers/s": {
				Startup:   probeWith(execHandler("true"), func(p *corev1.Probe) { p.FailureThreshold = 30 }),
				Readiness: probeWith(tcpHandler(intstr.FromInt32(80)), nil),
				Liveness:  probeWith(httpGet(intstr.FromInt32(80)), nil),
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
			}}}},
		{"disabled alpha fields are dropped: httpGet protocol, grpc mode, stopSignal",
			ctrDoc("livenessProbe: {httpGet: {port: 80, protocol: HTTP2}}, readinessProbe: {grpc: {port: 9000, mode: TLS}}, lifecycle: {preStop: {httpGet: {port: 80, protocol: HTTP1}}, stopSignal: SIGUSR1}"),
			inC(handlers{
				Liveness:  probeWith(httpGet(intstr.FromInt32(80)), nil),
				Readiness: probeWith(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000, Service: ptrTo("")}}, nil),
				Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: httpGet(intstr.FromInt32(80)).HTTPGet}},
			})},
		{"a lifecycle left empty by the drop is gone: an init container may have one with only a stopSignal",
			specDoc("p", "initContainers: [{name: i, image: busybox, lifecycle: {stopSignal: SIGTERM}}]", "containers: [{name: c, image: busybox, lifecycle: {stopSignal: SIGTERM}}]"),
			map[string]map[string]handlers{"p": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Decode("ok.yaml", []byte(tt.doc), testOpts)
			if len(s.Errors) != 0 {
				t.Fatalf("valid document rejected: %+v", summarize(s))
			}
			got := map[string]map[string]handlers{}
			for _, pod := range s.Pods {
				got[pod.Name] = handlersOf(pod)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestProbeAndHookExamples decodes the Kubernetes website's probe and
// lifecycle examples in place: each is accepted, with the probes and hooks
// the API server would store.
func TestProbeAndHookExamples(t *testing.T) {
	dir := testenv.ConformanceDir(t)
	httpGet := func(path string, port int32, headers ...corev1.HTTPHeader) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP, HTTPHeaders: headers}}
	}
	delayed := func(initial, period int32) func(*corev1.Probe) {
		return func(p *corev1.Probe) {
			p.InitialDelaySeconds = initial
			if period != 0 {
				p.PeriodSeconds = period
			}
		}
	}
	want := map[string]map[string]handlers{
		"pods/probe/exec-liveness.yaml": {"containers/liveness": {
			Liveness: probeWith(execHandler("cat", "/tmp/healthy"), delayed(5, 5))}},
		"pods/probe/grpc-liveness.yaml": {"containers/etcd": {
			Liveness: probeWith(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 2379, Service: ptrTo("")}}, delayed(10, 0))}},
		"pods/probe/http-liveness.yaml": {"containers/liveness": {
			Liveness: probeWith(httpGet("/healthz", 8080, corev1.HTTPHeader{Name: "Custom-Header", Value: "Awesome"}), delayed(3, 3))}},
		"pods/probe/pod-with-http-healthcheck.yaml": {"containers/nginx": {
			Liveness: probeWith(httpGet("/_status/healthz", 80), delayed(30, 0))}},
		"pods/probe/pod-with-tcp-socket-healthcheck.yaml": {"containers/redis": {
			Liveness: probeWith(tcpHandler(intstr.FromInt32(6379)), delayed(30, 0))}},
		"pods/probe/tcp-liveness-readiness.yaml": {"containers/goproxy": {
			Liveness:  probeWith(tcpHandler(intstr.FromInt32(8080)), delayed(15, 10)),
			Readiness: probeWith(tcpHandler(intstr.FromInt32(8080)), delayed(15, 10))}},
		"pods/lifecycle-events.yaml": {"containers/lifecycle-demo-container": {Lifecycle: &corev1.Lifecycle{
			PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"}}},
			PreStop:   &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/sh", "-c", "nginx -s quit; while killall -0 nginx; do sleep 1; done"}}},
		}}},
	}
	files, err := filepath.Glob(filepath.Join(dir, "pods", "probe", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(dir, "pods", "lifecycle-events.yaml"))
	got := map[string]map[string]handlers{}
	for _, path := range files {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := Decode(filepath.Base(path), data, testOpts)
		if len(s.Errors) != 0 || len(s.Pods) != 1 {
			t.Errorf("%s: want one pod and no error, got %+v", rel, summarize(s))
			continue
		}
		got[filepath.ToSlash(rel)] = handlersOf(s.Pods[0])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("probes and hooks of the examples (-want +got):\n%s", diff)
	}
}
