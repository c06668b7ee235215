package systemd

import (
	"fmt"
	"net"
	"os"

	mdvsock "github.com/mdlayher/vsock"
	sys "golang.org/x/sys/unix"
)

// adopt serves a passed socket with its family's transport. The listener
// holds its own copy of the descriptor; f stays the caller's.
func (t Transport) adopt(f *os.File) (net.Listener, error) {
	sa, err := sockname(f)
	if err != nil {
		return nil, err
	}
	switch sa.(type) {
	case *sys.SockaddrVM:
		l, err := mdvsock.FileListener(f)
		if err != nil {
			return nil, err
		}
		return t.Vsock.Wrap(l), nil
	case *sys.SockaddrUnix:
		l, err := net.FileListener(f)
		if err != nil {
			return nil, err
		}
		ul, ok := l.(*net.UnixListener)
		if !ok {
			l.Close()
			return nil, fmt.Errorf("a unix socket that is not a stream listener")
		}
		return t.Unix.Wrap(ul), nil
	case *sys.SockaddrInet4, *sys.SockaddrInet6:
		l, err := net.FileListener(f)
		if err != nil {
			return nil, err
		}
		return t.TCP.Wrap(l), nil
	}
	return nil, fmt.Errorf("a socket of a family tether does not serve (%T)", sa)
}

// sockname returns the socket's own address, without f.Fd's side effect of
// making the shared descriptor blocking.
func sockname(f *os.File) (sys.Sockaddr, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sa sys.Sockaddr
	var serr error
	if err := rc.Control(func(fd uintptr) { sa, serr = sys.Getsockname(int(fd)) }); err != nil {
		return nil, err
	}
	return sa, serr
}
