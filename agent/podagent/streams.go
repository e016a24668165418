package podagent

import "github.com/podboot/podboot/agent/api"

// streams is the API's exec, attach and port-forward: the containerd
// runtime's Streamer; nil (the API answers 405) without a runtime.
func (nr *nodeRuntime) streams() api.Streams {
	if nr == nil || nr.ctrd == nil {
		return nil
	}
	return nr.ctrd
}
