// Package manifest turns the flash's manifest directory (/flash/pods:
// *.yaml, *.yml, *.json) into desired state, exactly as an API server would
// accept it: strictly decoded k8s.io/api/core/v1 objects (Pod, ConfigMap,
// Secret, Namespace), defaulted and validated, each rejected document
// reported as a DocumentError that names the file, the document, the object
// and the field. One bad document never stops the others.
//
// # Reading files
//
// A file holds YAML documents separated by "---", or JSON (one object or
// several concatenated), or a v1 List of objects in either syntax. A file
// starting with '{' is tried as JSON first and, unless it is a .json file,
// read as YAML when that fails: the Kubernetes examples use flow-style YAML
// with comments that starts with '{' too. Documents holding only comments
// are skipped and not counted: DocumentError.Index counts the documents
// that hold something, so a license header before the first "---" does not
// shift the numbers. Hidden files and editor or package-manager leftovers
// (.*.swp, *~, .#*, 4913, *.tmp, *.dpkg-*) are never read.
//
// # Strict decoding
//
// Documents are converted to JSON by sigs.k8s.io/yaml and decoded with
// sigs.k8s.io/json's UnmarshalStrict, the decoder behind the API server's
// fieldValidation=Strict (kubectl's default): an unknown or repeated field
// is an error naming its path, e.g. `unknown field "spec.containers[0].imagee"`.
// YAML keys repeated in one mapping disappear in the conversion to JSON, so
// a walk of the YAML tree reports them with their path first. When typed
// decoding fails outright (a bad quantity such as `cpu: 1xyz`, a string
// where a number belongs), the document is walked again beside its Go type
// to find the field, because encoding/json does not name it. Input status
// and server-owned metadata (uid, resourceVersion, creationTimestamp, ...)
// are dropped, as on create; managedFields are kept (the API writes them,
// and server-side apply needs them after a reboot). A rejected Secret's
// error never shows its values.
//
// # Defaults and validation
//
// The API server's defaults (k8s.io/kubernetes/pkg/apis/core/v1's
// SetDefaults_*, the "+default" markers, the Priority admission plugin's
// priority 0) are written out here since k8s.io/kubernetes cannot be
// imported; ServiceAccount admission is not applied, so service-account
// fields stay as written. Validation uses apimachinery's helpers with the
// core validation's field paths and messages for the rules a node agent
// depends on; DocumentError.Field is the first error's path and Err lists
// them all. Probes and lifecycle hooks are validated in full, rule for rule
// (validate_probes.go), since the prober and the hook runner trust them;
// the probe and hook fields of alpha features that are off by default
// (httpGet.protocol, grpc.mode, lifecycle.stopSignal) are dropped, as the
// API server drops them on create.
//
// # Static pods: names and UIDs
//
// Pods get kubelet's static-pod fields: spec.nodeName, the annotations
// kubernetes.io/config.source=file and kubernetes.io/config.hash=<uid>, and
// a toleration of every NoExecute taint. Unlike kubelet's mirror pods, the
// name is kept exactly as written, not suffixed with "-<node>": there is no
// cluster in which names must be unique across nodes, the flash is the
// source of truth, and a kubectl user must find a pod by the name they wrote.
//
// The UID follows kubelet's rule (pkg/kubelet/config/common.go): an MD5 over
// the node name and the decoded, defaulted object (with the static-pod
// nodeName and toleration), formatted as a version 3 UUID. It leaves out
// the file name, so moving a document to another file, reformatting it or
// writing out its defaults keeps the pod, and the labels, annotations and
// managedFields, so a metadata-only change keeps it too (kubelet does not
// restart containers for one); any other change gives a new UID, which
// replaces the pod. ConfigMaps, Secrets and Namespaces get UIDs by the same
// rule.
//
// # Writes
//
// The API writes through the Watcher (write.go): Refresh reads the
// directory now; Apply replaces, removes or adds objects' documents
// (rewrite.go keeps every other byte of a file), each file atomically and
// only if it is still what was read, then delivers the new Set. Render is
// the document written for an object; Check decodes an API object exactly
// as a file's document. docs/manifests.md has the rules.
//
// # Duplicates
//
// Two objects of one kind, namespace and name: the one first in file-name
// order (then document order) wins; the later one is a DocumentError naming
// where the winner is.
//
// # Watching
//
// LoadDir is stateless. The Watcher adds inotify (fsnotify) with a 150 ms
// debounce, a periodic resync that does not trust inotify, and a retry while
// the directory is missing (reported once in the log, and as a Set error).
// It only calls onChange when the Set's Hash changes.
//
// Two rules protect running pods from writers caught mid-write:
//
//   - Settling: content that changed less than 500 ms ago (by its mtime or
//     by when the Watcher first saw it, whichever is older; boards boot with
//     clocks in 1970) is not trusted yet. The file keeps contributing what
//     it did before, and is read again once it settles.
//   - Except complete files: a file that inotify last reported renamed into
//     the directory (IN_MOVED_TO: atomic saves by editors, kubectl-style
//     tools and podboot's own writers) or closed after writing
//     (IN_CLOSE_WRITE), with no write since, is read after a 10 ms
//     debounce without settling. fsnotify v1.10.1 does not export
//     close-write and reports IN_CREATE and IN_MOVED_TO alike as Create, so
//     on Linux a second inotify instance on the directory supplies these
//     events, in one queue so that a write after a close is seen in order.
//     The trust covers one read; lost events (queue overflow) drop it
//     everywhere. A close is per descriptor: a second writer closing while
//     the first still writes would be trusted; the last-good rule still
//     covers content that no longer parses. Elsewhere, every change settles.
//   - Last good file: a file that decoded as a whole before and now does
//     not (a YAML/JSON syntax error, a document that is not an object, an
//     empty file, a read error) keeps contributing the objects of its last
//     good content, while its new errors are reported. A half-written file
//     therefore never terminates pods. A file that decodes but holds an
//     invalid object is not "broken": that object is rejected as written.
//     To remove a file's objects, delete the file or its documents; emptying
//     it is treated as a truncated write.
package manifest
