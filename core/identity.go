package core

import (
	"crypto/tls"
	"net"
)

// Identifier is an optional interface of a connection's RemoteAddr: the
// peer's identity as its transport knows it, for names and logs ("vm(3)",
// "uid=1000,pid=42").
type Identifier interface {
	Identity() string
}

// identity returns who is on the other end of c.
func identity(c net.Conn) string {
	if tc, ok := c.(*tls.Conn); ok {
		if st := tc.ConnectionState(); len(st.PeerCertificates) > 0 {
			return "cn=" + st.PeerCertificates[0].Subject.CommonName
		}
	}
	if id, ok := c.RemoteAddr().(Identifier); ok {
		return id.Identity()
	}
	return remoteString(c)
}
