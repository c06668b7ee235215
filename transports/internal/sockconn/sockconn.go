// Package sockconn is the connection the socket transports (unix, vsock,
// hvsock) return: a socket whose addresses are the transport's own (a
// peer's credentials, a CID, a VMM port), with nothing else changed, so it
// is core.Transparent and the engine uses the socket's fast paths.
package sockconn

import (
	"errors"
	"net"
	"time"

	"github.com/tetherkit/tether/core"
)

// Conn is a socket with the addresses its transport reports. Its methods
// are net.Conn's, CloseWrite and CloseRead, and TransparentConn. Its zero
// value answers every method with ErrNoSocket.
type Conn struct {
	sock          net.Conn
	local, remote net.Addr
}

var (
	_ net.Conn         = (*Conn)(nil)
	_ core.Transparent = (*Conn)(nil)
)

// ErrNoSocket is what a Conn made by hand, not by a transport, answers.
var ErrNoSocket = errors.New("no socket: this connection was not made by a transport's Dial or Accept")

// New wraps sock; a nil address keeps the socket's own.
func New(sock net.Conn, local, remote net.Addr) *Conn {
	if local == nil {
		local = sock.LocalAddr()
	}
	if remote == nil {
		remote = sock.RemoteAddr()
	}
	return &Conn{sock: sock, local: local, remote: remote}
}

func (c *Conn) ok() bool { return c != nil && c.sock != nil }

// Read reads from the socket.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.ok() {
		return 0, ErrNoSocket
	}
	return c.sock.Read(p)
}

// Write writes to the socket.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.ok() {
		return 0, ErrNoSocket
	}
	return c.sock.Write(p)
}

// Close closes the socket.
func (c *Conn) Close() error {
	if !c.ok() {
		return ErrNoSocket
	}
	return c.sock.Close()
}

// LocalAddr returns this side's address as the transport reports it.
func (c *Conn) LocalAddr() net.Addr {
	if c == nil {
		return nil
	}
	return c.local
}

// RemoteAddr returns the peer's address as the transport reports it.
func (c *Conn) RemoteAddr() net.Addr {
	if c == nil {
		return nil
	}
	return c.remote
}

// SetDeadline sets the socket's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if !c.ok() {
		return ErrNoSocket
	}
	return c.sock.SetDeadline(t)
}

// SetReadDeadline sets the socket's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.ok() {
		return ErrNoSocket
	}
	return c.sock.SetReadDeadline(t)
}

// SetWriteDeadline sets the socket's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.ok() {
		return ErrNoSocket
	}
	return c.sock.SetWriteDeadline(t)
}

// CloseWrite shuts down the sending side: the peer reads everything sent,
// then end of stream.
func (c *Conn) CloseWrite() error {
	if !c.ok() {
		return ErrNoSocket
	}
	if cw, ok := c.sock.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead shuts down the receiving side.
func (c *Conn) CloseRead() error {
	if !c.ok() {
		return ErrNoSocket
	}
	if cr, ok := c.sock.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}

// TransparentConn returns the socket and c: c changes only the addresses.
func (c *Conn) TransparentConn() (net.Conn, net.Conn) {
	if !c.ok() {
		return nil, c
	}
	return c.sock, c
}
