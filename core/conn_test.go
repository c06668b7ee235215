package core_test

import (
	"net"
	"testing"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/unix"
)

// counting embeds a standard socket and overrides Read: it must be read
// through Read, whatever it embeds.
type counting struct {
	*net.UnixConn
	n int
}

func (c *counting) Read(p []byte) (int, error) { n, err := c.UnixConn.Read(p); c.n += n; return n, err }

// wrapsTransparent embeds a Transparent connection and overrides Write: it
// inherits TransparentConn, which must not make it one.
type wrapsTransparent struct {
	transparentConn
}

type transparentConn interface {
	net.Conn
	core.Transparent
}

func (w *wrapsTransparent) Write(p []byte) (int, error) { return w.transparentConn.Write(p) }

// uncomparable is Transparent with a value receiver and a type that cannot
// be compared: SocketOf must not panic on it.
type uncomparable struct {
	*net.UnixConn
	tags []string
}

func (u uncomparable) TransparentConn() (net.Conn, net.Conn) { return u.UnixConn, u }

func TestSocketOf(t *testing.T) {
	a, b := unixPair(t)
	accepted := a.(transparentConn)
	sock, _ := accepted.TransparentConn()
	tests := []struct {
		name   string
		conn   net.Conn
		socket net.Conn // nil: not a socket the engine may use directly
	}{
		{"standard unix socket", b, b},
		{"transparent built-in", accepted, sock},
		{"embeds a socket, overrides Read", &counting{UnixConn: sock.(*net.UnixConn)}, nil},
		{"embeds a Transparent conn, overrides Write", &wrapsTransparent{accepted}, nil},
		{"uncomparable Transparent value", uncomparable{UnixConn: sock.(*net.UnixConn)}, nil},
	}
	for _, tt := range tests {
		got, ok := core.SocketOf(tt.conn)
		if ok != (tt.socket != nil) || got != tt.socket {
			t.Errorf("%s: SocketOf = %v, %v; want %v", tt.name, got, ok, tt.socket)
		}
	}
}

func unixPair(t *testing.T) (accepted, dialed net.Conn) {
	t.Helper()
	path := listenAddr(t, unix.Transport{})
	l, err := unix.Transport{}.Listen(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	d, err := unix.Transport{}.Dial(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); d.Close() })
	return a, d
}
