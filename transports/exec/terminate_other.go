//go:build !unix

package exec

import "os"

// terminate stops a process: this system has no polite way to ask.
func terminate(p *os.Process) { p.Kill() }
