//go:build !unix

package core

import "syscall"

// nowWriter does nothing on this system: every frame goes through the
// receiver's writer.
type nowWriter struct{}

func (*nowWriter) init(syscall.RawConn) {}

func (*nowWriter) write([]byte) int { return 0 }
