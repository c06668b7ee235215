package unix

import (
	"context"
	"net"
	"os"
	"syscall"
)

// fileModes says whether socket files have modes and groups here.
const fileModes = true

// listenOwnerOnly binds and listens at path with the socket file created
// with at most mode: Linux gives the file bind creates the mode of the
// socket's own inode (less the umask), so the mode is set on the unbound
// socket first. There is no moment at which the file is wider.
func listenOwnerOnly(ctx context.Context, path string, mode os.FileMode) (*net.UnixListener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.Fchmod(int(fd), uint32(mode))
		}); cerr != nil {
			return cerr
		}
		return os.NewSyscallError("fchmod", err)
	}}
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return l.(*net.UnixListener), nil
}
