//go:build unix

package exec

import (
	"os"
	"syscall"
)

// terminate asks a process to stop.
func terminate(p *os.Process) { p.Signal(syscall.SIGTERM) }
