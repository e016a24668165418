package device

// Images is device.yaml's images section.
type Images struct {
	// OfflineFallback: when an Always pull (an untagged or :latest image)
	// fails because no registry answers and the image is in the board's
	// store, run the stored image with a Warning event. On by default
	// (a board is often offline); false is kubelet's strict behaviour.
	OfflineFallback *bool `json:"offlineFallback,omitempty"`
}

// UseStoredWhenOffline reports whether the offline fallback is on.
func (i Images) UseStoredWhenOffline() bool { return i.OfflineFallback == nil || *i.OfflineFallback }
