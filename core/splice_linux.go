package core

import (
	"errors"
	"os"
	"syscall"

	sys "golang.org/x/sys/unix"
)

// spliceChunk is the most one splice moves into the pipe at a time.
const spliceChunk = 1 << 20

// splicer moves bytes from one socket to another through a kernel pipe,
// never copying them into this process's memory.
type splicer struct {
	r, w int // the pipe's ends
}

// newSplicer makes the pipe, as large as the system lets an unprivileged
// process make it (the more a splice moves, the fewer system calls).
func newSplicer() (*splicer, error) {
	var p [2]int
	if err := sys.Pipe2(p[:], sys.O_CLOEXEC|sys.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	sys.FcntlInt(uintptr(p[1]), sys.F_SETPIPE_SZ, spliceChunk) // a smaller pipe works too
	return &splicer{r: p[0], w: p[1]}, nil
}

func (s *splicer) close() {
	sys.Close(s.r)
	sys.Close(s.w)
}

// errSpliceUnsupported says the kernel cannot splice these sockets (vsock,
// for one): the caller copies instead. It is returned only before any byte
// has moved.
var errSpliceUnsupported = errors.New("splice not supported for these sockets")

// copy moves everything from src to dst until src ends (nil) or fails,
// calling moved after each chunk arrives at dst.
func (s *splicer) copy(dst, src syscall.RawConn, moved func(int)) error {
	first := true
	for {
		var in int64
		var serr error
		err := src.Read(func(fd uintptr) bool {
			for {
				in, serr = sys.Splice(int(fd), nil, s.w, nil, spliceChunk, sys.SPLICE_F_MOVE|sys.SPLICE_F_NONBLOCK)
				if serr != sys.EINTR {
					break
				}
			}
			return serr != sys.EAGAIN // wait for data, else done
		})
		if err != nil {
			return err // a deadline, or the connection closed
		}
		if serr != nil {
			if first && (serr == sys.EINVAL || serr == sys.ENOSYS || serr == sys.EOPNOTSUPP) {
				return errSpliceUnsupported
			}
			return os.NewSyscallError("splice", serr)
		}
		if in == 0 {
			return nil // end of stream
		}
		first = false
		for in > 0 {
			var out int64
			err := dst.Write(func(fd uintptr) bool {
				for {
					out, serr = sys.Splice(s.r, nil, int(fd), nil, int(in), sys.SPLICE_F_MOVE|sys.SPLICE_F_NONBLOCK)
					if serr != sys.EINTR {
						break
					}
				}
				return serr != sys.EAGAIN // wait for room, else done
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return os.NewSyscallError("splice", serr)
			}
			in -= out
			moved(int(out))
		}
	}
}
