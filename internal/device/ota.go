package device

import (
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the OTA section.
const (
	DefaultOTAPollInterval   = 5 * time.Minute
	DefaultOTAHealthDeadline = 5 * time.Minute
	DefaultOTAStableFor      = 60 * time.Second
)

// OTA is device.yaml's ota section: who may sign a bundle and where the
// board looks for new ones. Without keys the board takes no bundle at all.
type OTA struct {
	// Keys are the public keys a bundle's statement must be signed by, each
	// as `podctl ota keygen` writes KEY.pub ("ed25519:<base64>").
	Keys []string `json:"keys,omitempty"`
	// Threshold is how many distinct keys must sign (k of n); 0 means 1.
	Threshold int `json:"threshold,omitempty"`
	// Channel, when set, must be the statement's channel.
	Channel string `json:"channel,omitempty"`
	// Source is polled for new bundles: oci://HOST[:PORT]/REPO:TAG, or
	// oci-layout:/DIR for an OCI layout on a mounted USB stick.
	Source string `json:"source,omitempty"`
	// Insecure talks plain HTTP to Source's registry.
	Insecure bool `json:"insecure,omitempty"`
	// PollInterval is how often Source's tag is resolved (with jitter).
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`
	// HealthDeadline is how long a new generation's pods have to be Ready
	// (or Succeeded); StableFor is how long after that no container may
	// restart. A generation that misses either is rolled back.
	HealthDeadline *metav1.Duration `json:"healthDeadline,omitempty"`
	StableFor      *metav1.Duration `json:"stableFor,omitempty"`
}

// Enabled reports whether bundles can be taken at all.
func (o OTA) Enabled() bool { return len(o.Keys) > 0 }

// Poll is PollInterval or its default.
func (o OTA) Poll() time.Duration { return durationOr(o.PollInterval, DefaultOTAPollInterval) }

// Deadline is HealthDeadline or its default.
func (o OTA) Deadline() time.Duration { return durationOr(o.HealthDeadline, DefaultOTAHealthDeadline) }

// Stable is StableFor or its default.
func (o OTA) Stable() time.Duration { return durationOr(o.StableFor, DefaultOTAStableFor) }

// MinSigners is Threshold or 1.
func (o OTA) MinSigners() int { return max(o.Threshold, 1) }

// SourceRef is Source without its oci:// scheme ("" when there is none).
func (o OTA) SourceRef() string { return strings.TrimPrefix(o.Source, "oci://") }

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return d.Duration
}

func (o OTA) validate() error {
	var errs []error
	if o.Threshold < 0 || o.Threshold > len(o.Keys) && len(o.Keys) > 0 {
		errs = append(errs, fmt.Errorf("ota.threshold: %d is not between 1 and the %d keys", o.Threshold, len(o.Keys)))
	}
	if o.Source != "" && !strings.HasPrefix(o.Source, "oci://") && !strings.HasPrefix(o.Source, "oci-layout:/") {
		errs = append(errs, fmt.Errorf("ota.source: %q must be oci://HOST[:PORT]/REPO:TAG or oci-layout:/DIR (a mounted USB stick)", o.Source))
	}
	for name, d := range map[string]*metav1.Duration{"pollInterval": o.PollInterval, "healthDeadline": o.HealthDeadline, "stableFor": o.StableFor} {
		if d != nil && d.Duration <= 0 {
			errs = append(errs, fmt.Errorf("ota.%s: %s must be positive", name, d.Duration))
		}
	}
	return errors.Join(errs...)
}
