//go:build !linux

package core

import (
	"errors"
	"syscall"
)

// splicer does nothing here: bytes are copied through a buffer.
type splicer struct{}

var errSpliceUnsupported = errors.New("splice not supported on this system")

func newSplicer() (*splicer, error) { return nil, errSpliceUnsupported }

func (*splicer) close() {}

func (*splicer) copy(dst, src syscall.RawConn, moved func(int)) error { return errSpliceUnsupported }
