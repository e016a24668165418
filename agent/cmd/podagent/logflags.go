package main

import (
	"flag"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podboot/podboot/agent/logs"
)

// logFlags registers kubelet's container log flags, and the total podboot
// holds all logs to, on fs. A flag not given leaves its field zero, so that
// device.yaml's logs section applies (podagent.Run), else the defaults.
func logFlags(fs *flag.FlagSet, c *logs.Config) {
	fs.Var(&quantityFlag{v: &c.MaxSize}, "container-log-max-size",
		"size at which a container's log file is rotated, e.g. 1Mi (kubelet's flag; default: device.yaml's logs.containerLogMaxSize, else "+quantityString(logs.DefaultConfig().MaxSize)+")")
	fs.Var(&logFilesFlag{v: &c.MaxFiles}, "container-log-max-files",
		"log files kept per container instance, the current one included, at least 2 (kubelet's flag; default: device.yaml's logs.containerLogMaxFiles, else "+strconv.Itoa(logs.DefaultConfig().MaxFiles)+")")
	fs.Var(&quantityFlag{v: &c.MaxTotal}, "container-log-max-total",
		"total size of all containers' logs; over it, the oldest rotated files go first (default: device.yaml's logs.containerLogMaxTotal, else "+quantityString(logs.DefaultConfig().MaxTotal)+")")
}

func quantityString(n int64) string { return resource.NewQuantity(n, resource.BinarySI).String() }

// quantityFlag is a size in bytes given as a Kubernetes quantity ("10Mi").
type quantityFlag struct{ v *int64 }

func (q *quantityFlag) String() string {
	if q == nil || q.v == nil || *q.v == 0 {
		return ""
	}
	return quantityString(*q.v)
}

func (q *quantityFlag) Set(s string) error {
	v, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("invalid quantity %q: %w", s, err)
	}
	if v.Sign() <= 0 {
		return fmt.Errorf("invalid quantity %q: must be greater than 0", s)
	}
	*q.v = v.Value()
	return nil
}

// logFilesFlag is containerLogMaxFiles: kubelet refuses fewer than 2.
type logFilesFlag struct{ v *int }

func (f *logFilesFlag) String() string {
	if f == nil || f.v == nil || *f.v == 0 {
		return ""
	}
	return strconv.Itoa(*f.v)
}

func (f *logFilesFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("invalid number %q: %w", s, err)
	}
	if n < 2 {
		return fmt.Errorf("invalid value %d: must be at least 2 (the current and the previous file, as kubelet)", n)
	}
	*f.v = n
	return nil
}
