//go:build !linux

package manifest

import "errors"

// closeWatch needs inotify's IN_CLOSE_WRITE; elsewhere every change settles.
type closeWatch struct{}

func newCloseWatch() (*closeWatch, error) {
	return nil, errors.New("close-write events need Linux inotify")
}

func (c *closeWatch) add(string) error       { return nil }
func (c *closeWatch) Hints() <-chan fileHint { return nil }
func (c *closeWatch) close()                 {}
