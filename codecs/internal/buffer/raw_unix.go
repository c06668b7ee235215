//go:build unix

package buffer

import (
	"os"
	"syscall"
)

// rawReads says whether this system reads sockets through their descriptor.
const rawReads = true

// readFD reads once from fd. wait reports that no data is there yet.
func readFD(fd uintptr, p []byte) (n int, wait bool, err error) {
	for {
		n, err := syscall.Read(int(fd), p)
		switch err {
		case nil:
			return n, false, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, true, nil
		}
		return 0, false, os.NewSyscallError("read", err)
	}
}
