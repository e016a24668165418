package device

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults for container logs. kubelet's are 10Mi and 5 files, but the
// board's state directory is tmpfs, so every byte of log is RAM: see
// docs/runtime.md for the budget these give.
const (
	DefaultContainerLogMaxSize  = "1Mi"
	DefaultContainerLogMaxFiles = 2
	DefaultContainerLogMaxTotal = "64Mi"
)

// Logs is device.yaml's logs section, named as kubelet's configuration
// names its fields (containerLogMaxSize, containerLogMaxFiles), plus the
// total the board holds for all containers' logs together.
type Logs struct {
	// ContainerLogMaxSize is the size at which a container's log file is
	// rotated ("1Mi").
	ContainerLogMaxSize Amount `json:"containerLogMaxSize,omitempty"`
	// ContainerLogMaxFiles is how many files a container keeps: the
	// current one and the rotated ones (at least 2, as kubelet requires).
	ContainerLogMaxFiles int `json:"containerLogMaxFiles,omitempty"`
	// ContainerLogMaxTotal bounds all containers' logs together; when it
	// is exceeded, the oldest rotated files go first.
	ContainerLogMaxTotal Amount `json:"containerLogMaxTotal,omitempty"`
}

func (l Logs) withDefaults() Logs {
	if l.ContainerLogMaxSize == "" {
		l.ContainerLogMaxSize = DefaultContainerLogMaxSize
	}
	if l.ContainerLogMaxFiles == 0 {
		l.ContainerLogMaxFiles = DefaultContainerLogMaxFiles
	}
	if l.ContainerLogMaxTotal == "" {
		l.ContainerLogMaxTotal = DefaultContainerLogMaxTotal
	}
	return l
}

// MaxSize, MaxTotal are the sizes in bytes; call them on a loaded config.
func (l Logs) MaxSize() int64 {
	return quantityOr(l.withDefaults().ContainerLogMaxSize, DefaultContainerLogMaxSize)
}
func (l Logs) MaxTotal() int64 {
	return quantityOr(l.withDefaults().ContainerLogMaxTotal, DefaultContainerLogMaxTotal)
}

func quantityOr(a Amount, def string) int64 {
	q, err := resource.ParseQuantity(string(a))
	if err != nil {
		q = resource.MustParse(def)
	}
	return q.Value()
}

func (l Logs) validate() error {
	for _, f := range []struct {
		name string
		v    Amount
	}{{"containerLogMaxSize", l.ContainerLogMaxSize}, {"containerLogMaxTotal", l.ContainerLogMaxTotal}} {
		if f.v == "" {
			continue
		}
		q, err := resource.ParseQuantity(string(f.v))
		if err != nil {
			return fmt.Errorf("logs.%s: Invalid value: %q: %v", f.name, f.v, err)
		}
		if q.Sign() <= 0 {
			return fmt.Errorf("logs.%s: Invalid value: %q: must be greater than 0", f.name, f.v)
		}
	}
	if n := l.ContainerLogMaxFiles; n != 0 && n < 2 {
		return fmt.Errorf("logs.containerLogMaxFiles: Invalid value: %d: must be at least 2 (the current and the previous file, as kubelet)", n)
	}
	return nil
}
