package unix

import (
	"fmt"
	"net"

	sys "golang.org/x/sys/unix"
)

// PeerAddr is the remote address of an accepted unix connection: the
// credentials of the peer process at connect time (SO_PEERCRED).
type PeerAddr struct {
	PID int32
	UID uint32
	GID uint32
}

// Network returns "unix".
func (a *PeerAddr) Network() string { return Name }

// String returns "pid=P,uid=U,gid=G".
func (a *PeerAddr) String() string { return fmt.Sprintf("pid=%d,uid=%d,gid=%d", a.PID, a.UID, a.GID) }

// Identity returns "uid=U,pid=P": who the peer is, for names and logs.
func (a *PeerAddr) Identity() string { return fmt.Sprintf("uid=%d,pid=%d", a.UID, a.PID) }

// Conn is an accepted unix connection whose RemoteAddr is a [*PeerAddr] when
// the kernel reports credentials. Every other method is *net.UnixConn's.
type Conn struct {
	*net.UnixConn
	peer net.Addr
}

func newConn(c *net.UnixConn) *Conn {
	conn := &Conn{UnixConn: c, peer: c.RemoteAddr()}
	if raw, err := c.SyscallConn(); err == nil {
		var cred *sys.Ucred
		var credErr error
		if err := raw.Control(func(fd uintptr) {
			cred, credErr = sys.GetsockoptUcred(int(fd), sys.SOL_SOCKET, sys.SO_PEERCRED)
		}); err == nil && credErr == nil {
			conn.peer = &PeerAddr{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		}
	}
	return conn
}

// RemoteAddr returns the peer's credentials.
func (c *Conn) RemoteAddr() net.Addr { return c.peer }
