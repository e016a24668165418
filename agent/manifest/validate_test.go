package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// spec builds a pod document from the lines of its spec (indented by two).
func specDoc(name string, spec ...string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n  " + strings.Join(spec, "\n  ") + "\n"
}

func TestValidation(t *testing.T) {
	const c = "containers: [{name: c, image: busybox}]"
	tests := []struct {
		name      string
		doc       string
		wantField string
		wantErr   string // the DocumentError's Err message
	}{
		{"pod name must be a DNS-1123 subdomain", specDoc("Web_1", c),
			"metadata.name", `metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"pod name is required", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\nspec: {" + c + "}\n",
			"metadata.name", "metadata.name: Required value: name or generateName is required"},
		{"namespace must be a DNS-1123 label", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: a.b}\nspec: {" + c + "}\n",
			"metadata.namespace", `metadata.namespace: Invalid value: "a.b": must not contain dots`},
		{"label syntax", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: \"a b\"}}\nspec: {" + c + "}\n",
			"metadata.labels", `metadata.labels: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
		{"annotation key syntax", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, annotations: {\"a/b/c\": x}}\nspec: {" + c + "}\n",
			"metadata.annotations", `metadata.annotations: Invalid value: "a/b/c": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`},
		{"at least one container", specDoc("web", "containers: []"),
			"spec.containers", "spec.containers: Required value"},
		{"container name must be a DNS-1123 label", specDoc("web", "containers: [{name: Web, image: busybox}]"),
			"spec.containers[0].name", `spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"container name required", specDoc("web", "containers: [{image: busybox}]"),
			"spec.containers[0].name", "spec.containers[0].name: Required value"},
		{"container names unique across init and regular", specDoc("web", "initContainers: [{name: c, image: busybox}]", c),
			"spec.containers[0].name", `spec.containers[0].name: Duplicate value: "c"`},
		{"image required", specDoc("web", "containers: [{name: c}]"),
			"spec.containers[0].image", "spec.containers[0].image: Required value"},
		{"init container image required", specDoc("web", "initContainers: [{name: i}]", c),
			"spec.initContainers[0].image", "spec.initContainers[0].image: Required value"},
		{"containerPort required", specDoc("web", "containers: [{name: c, image: busybox, ports: [{name: http}]}]"),
			"spec.containers[0].ports[0].containerPort", "spec.containers[0].ports[0].containerPort: Required value"},
		{"containerPort range", specDoc("web", "containers: [{name: c, image: busybox, ports: [{containerPort: 70000}]}]"),
			"spec.containers[0].ports[0].containerPort", "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"},
		{"hostPort range", specDoc("web", "containers: [{name: c, image: busybox, ports: [{containerPort: 80, hostPort: -1}]}]"),
			"spec.containers[0].ports[0].hostPort", "spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"},
		{"protocol", specDoc("web", "containers: [{name: c, image: busybox, ports: [{containerPort: 80, protocol: ICMP}]}]"),
			"spec.containers[0].ports[0].protocol", `spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"`},
		{"port name syntax", specDoc("web", "containers: [{name: c, image: busybox, ports: [{containerPort: 80, name: http_port}]}]"),
			"spec.containers[0].ports[0].name", `spec.containers[0].ports[0].name: Invalid value: "http_port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`},
		{"port names unique", specDoc("web", "containers: [{name: c, image: busybox, ports: [{containerPort: 80, name: http}, {containerPort: 81, name: http}]}]"),
			"spec.containers[0].ports[1].name", `spec.containers[0].ports[1].name: Duplicate value: "http"`},
		{"env var name", specDoc("web", "containers: [{name: c, image: busybox, env: [{name: \"A=B\", value: x}]}]"),
			"spec.containers[0].env[0].name", `spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='`},
		{"env var name required", specDoc("web", "containers: [{name: c, image: busybox, env: [{value: x}]}]"),
			"spec.containers[0].env[0].name", "spec.containers[0].env[0].name: Required value"},
		{"restartPolicy", specDoc("web", c, "restartPolicy: Sometimes"),
			"spec.restartPolicy", `spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`},
		{"imagePullPolicy", specDoc("web", "containers: [{name: c, image: busybox, imagePullPolicy: Sometimes}]"),
			"spec.containers[0].imagePullPolicy", `spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`},
		{"dnsPolicy", specDoc("web", c, "dnsPolicy: Google"),
			"spec.dnsPolicy", `spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"`},
		{"requests <= limits", specDoc("web", "containers: [{name: c, image: busybox, resources: {limits: {cpu: 500m}, requests: {cpu: \"1\"}}}]"),
			"spec.containers[0].resources.requests[cpu]", `spec.containers[0].resources.requests[cpu]: Invalid value: "1": must be less than or equal to cpu limit of 500m`},
		{"negative quantity", specDoc("web", "containers: [{name: c, image: busybox, resources: {requests: {memory: -1Mi}}}]"),
			"spec.containers[0].resources.requests[memory]", `spec.containers[0].resources.requests[memory]: Invalid value: "-1Mi": must be greater than or equal to 0`},
		{"volume names unique", specDoc("web", c, "volumes: [{name: v, emptyDir: {}}, {name: v, emptyDir: {}}]"),
			"spec.volumes[1].name", `spec.volumes[1].name: Duplicate value: "v"`},
		{"volume name syntax", specDoc("web", c, "volumes: [{name: V, emptyDir: {}}]"),
			"spec.volumes[0].name", `spec.volumes[0].name: Invalid value: "V": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{"one volume type", specDoc("web", c, "volumes: [{name: v, emptyDir: {}, hostPath: {path: /x}}]"),
			"spec.volumes[0]", "spec.volumes[0]: Forbidden: may not specify more than 1 volume type"},
		{"volumeMount refers to a volume", specDoc("web", "containers: [{name: c, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]"),
			"spec.containers[0].volumeMounts[0].name", `spec.containers[0].volumeMounts[0].name: Not found: "data"`},
		{"volumeMount needs mountPath", specDoc("web", "containers: [{name: c, image: busybox, volumeMounts: [{name: v}]}]", "volumes: [{name: v}]"),
			"spec.containers[0].volumeMounts[0].mountPath", "spec.containers[0].volumeMounts[0].mountPath: Required value"},
		{"probe needs a handler", specDoc("web", "containers: [{name: c, image: busybox, livenessProbe: {periodSeconds: 3}}]"),
			"spec.containers[0].livenessProbe", "spec.containers[0].livenessProbe: Required value: must specify a handler type"},
		{"several errors: field is the first, message lists all", specDoc("web", "containers: [{name: C}]"),
			"spec.containers[0].name", `[spec.containers[0].name: Invalid value: "C": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'), spec.containers[0].image: Required value]`},
		{"configmap key syntax", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {\"a b\": x}\n",
			"data[a b]", `data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')`},
		{"configmap key in data and binaryData", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: x}\nbinaryData: {a: eA==}\n",
			"data[a]", `data[a]: Invalid value: "a": duplicate of key present in binaryData`},
		{"secret key syntax", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {\"..\": x}\n",
			"data[..]", `data[..]: Invalid value: "..": must not be '..'`},
		{"tls secret needs its keys", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n",
			"data[tls.key]", "data[tls.key]: Required value"},
		{"namespace name is a DNS-1123 label", "apiVersion: v1\nkind: Namespace\nmetadata: {name: my.ns}\n",
			"metadata.name", `metadata.name: Invalid value: "my.ns": must not contain dots`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Decode("v.yaml", []byte(tt.doc), testOpts)
			if len(s.Errors) != 1 {
				t.Fatalf("want exactly one document error, got %+v", summarize(s))
			}
			if n := len(s.Pods) + len(s.ConfigMaps) + len(s.Secrets) + len(s.Namespaces); n != 0 {
				t.Errorf("rejected document still yielded %d objects", n)
			}
			got := []string{s.Errors[0].Field, s.Errors[0].Err.Error()}
			if diff := cmp.Diff([]string{tt.wantField, tt.wantErr}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationAccepts(t *testing.T) {
	docs := []string{
		specDoc("web.example", "containers: [{name: c, image: busybox, env: [{name: my.env-name, value: x}, {name: \"1_relaxed\", value: \"y\"}]}]"),
		specDoc("ports", "containers: [{name: c, image: busybox, ports: [{containerPort: 80, hostPort: 8080, name: http, protocol: UDP}, {containerPort: 81, protocol: SCTP}]}]"),
		specDoc("same-port-names-in-two-containers", "containers: [{name: a, image: busybox, ports: [{containerPort: 80, name: http}]}, {name: b, image: busybox, ports: [{containerPort: 81, name: http}]}]"),
		specDoc("requests-equal-limits", "containers: [{name: c, image: busybox, resources: {limits: {cpu: \"1\"}, requests: {cpu: 1000m}}}]"),
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a.conf: x, B_2: \"y\", -x: z}\n",
	}
	for _, doc := range docs {
		if s := Decode("ok.yaml", []byte(doc), testOpts); len(s.Errors) != 0 {
			t.Errorf("valid document rejected: %v", s.Errors[0])
		}
	}
}
