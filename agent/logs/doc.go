// Package logs writes and reads container log files in the CRI format that
// kubelet and containerd use:
//
//	<RFC3339Nano time> <stdout|stderr> <P|F> <text>
//
// A Writer turns a container's stdout and stderr into such lines the way
// containerd's CRI logger does (internal/cri/io/logger.go): one F line per
// complete line, lines longer than 16 KiB cut into P chunks and a final F,
// and a trailing unterminated line written as P when the writer closes. It
// rotates the file by size (path → path.1 → path.2 …) so that logs stay
// bounded on a board whose state directory is RAM.
//
// Read is the reading side of `kubectl logs` (kubelet's
// kuberuntime/logs.ReadLogs): it decodes the rotated files and the current
// one, joins P chunks into logical lines, and applies tail, since, limit
// and timestamps; with Follow it keeps reading appended data across
// rotations until its context ends.
package logs
