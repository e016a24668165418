//go:build !linux

package volumes

import "errors"

var errNoMounts = errors.New("mounts need Linux")

func mountTmpfs(dir string, size int64) error { return errNoMounts }
func unmount(dir string) error                { return errNoMounts }
func isMountPoint(dir string) (bool, error)   { return false, nil }
