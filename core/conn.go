package core

import (
	"context"
	"net"
	"reflect"
)

// The optional interfaces of the connections and listeners a [Transport]
// produces. The engine asks for nothing beyond net.Conn and net.Listener;
// each ability below is found by type assertion on the value the transport
// returned, never on a value it happens to embed.

// Handshaker is an optional interface of a connection whose transport runs a
// handshake before any message: TLS, Noise, SSH, a VMM's CONNECT. A [Server]
// runs it under its HandshakeTimeout before admitting the peer, so that what
// the handshake learns (see [Identifier]) is known to the admission rules.
// crypto/tls's *tls.Conn has this method.
type Handshaker interface {
	HandshakeContext(ctx context.Context) error
}

// Identifier is an optional interface of a connection, or of its RemoteAddr:
// who the peer is, as its transport knows it ("vm(3)", "uid=1000,pid=42",
// "cn=alice"). A connection's own Identity is asked after its handshake and
// wins over its address's.
type Identifier interface {
	Identity() string
}

// Identity returns who is on the other end of c: the connection's
// [Identifier], else its RemoteAddr's, else the remote address as text.
func Identity(c net.Conn) string {
	if id, ok := c.(Identifier); ok {
		if s := id.Identity(); s != "" {
			return s
		}
	}
	if id, ok := c.RemoteAddr().(Identifier); ok {
		return id.Identity()
	}
	return remoteString(c)
}

// Admitter is an optional interface of a [net.Listener] that carries the
// admission rules of its transport (allowed users, CIDs, address ranges,
// names learned in a handshake). A [Server] asks it about every connection
// accepted from that listener, after the handshake and before
// [Server.Admit]; an error refuses the peer and is logged as the reason.
type Admitter interface {
	Admit(conn net.Conn) error
}

// Transparent is an optional interface of a connection that wraps a socket
// only to report more about it (a peer's credentials, a typed address),
// while its Read and Write move exactly the socket's bytes. The engine then
// uses the socket itself for its fast paths: reads that wait in the poller
// holding no buffer and take one system call, and vectored writes.
//
// TransparentConn returns the socket and the receiver itself. The second
// result is how the engine tells a connection that opted in from a type that
// embeds one and overrides Read or Write (to decrypt, decompress or count):
// such a type inherits the method, but the receiver it reports is the
// embedded value, not the one the engine holds, so the engine reads and
// writes it through its own methods.
//
// A connection that transforms its bytes must not implement Transparent.
type Transparent interface {
	TransparentConn() (socket, self net.Conn)
}

// SocketOf returns the connection whose Read and Write are exactly c's, for
// code that wants a socket's fast paths (raw reads through
// [syscall.Conn], vectored writes through [net.Buffers]): c itself when it
// is a *net.TCPConn or *net.UnixConn, or the socket a [Transparent] c names.
// Otherwise ok is false and c must be used through its own methods only,
// whatever else it embeds. Codecs and transports use it the way the engine
// does.
func SocketOf(c net.Conn) (socket net.Conn, ok bool) {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return c, true
	case Transparent:
		s, self := c.(Transparent).TransparentConn()
		if s != nil && sameValue(self, c) {
			return s, true
		}
	}
	return nil, false
}

// sameValue reports whether a and b hold the same value, without panicking
// on types that cannot be compared (those are never the same).
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return false
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// remoteString is the peer's address as text, or its network when the
// transport reports no address.
func remoteString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	if a := c.LocalAddr(); a != nil {
		return a.Network()
	}
	return "peer"
}
