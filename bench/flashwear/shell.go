package flashwear

import (
	"fmt"
	"os"
	"time"

	"github.com/podboot/podboot/qemu/debugshell"
)

// shell types commands into the board's debug shell (podboot.debug=shell)
// through QEMU's serial socket, as qemu/e2e's Board.Shell does; a command
// that exits non-zero is an error.
type shell struct{ *debugshell.Shell }

func newShell(socket, console string) *shell {
	return &shell{&debugshell.Shell{Socket: socket, Console: func() string {
		data, _ := os.ReadFile(console)
		return string(data)
	}}}
}

func (s *shell) run(command string, timeout time.Duration) (string, error) {
	out, status, err := s.Run(command, timeout)
	if err != nil {
		return "", err
	}
	if status != 0 {
		return out, fmt.Errorf("debug shell: %q exited %d: %s", command, status, out)
	}
	return out, nil
}

func (s *shell) close() { _ = s.Close() }
