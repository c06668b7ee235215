package unix

import (
	"net"

	sys "golang.org/x/sys/unix"
)

// credentialsSupported says whether accepted connections report the peer's
// credentials.
const credentialsSupported = true

// peerCredentials asks the kernel who is on the other end (SO_PEERCRED).
func peerCredentials(c *net.UnixConn) *PeerAddr {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var cred *sys.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = sys.GetsockoptUcred(int(fd), sys.SOL_SOCKET, sys.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return nil
	}
	return &PeerAddr{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
}
