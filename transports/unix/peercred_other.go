//go:build !linux

package unix

import "net"

// credentialsSupported says whether accepted connections report the peer's
// credentials: not on this system (only Linux's SO_PEERCRED is used).
const credentialsSupported = false

func peerCredentials(*net.UnixConn) *PeerAddr { return nil }
