// Package stdio is the transport whose one connection is this process's
// standard input and output: what arrives on standard input is read from
// the connection, what is written to it goes to standard output, and
// CloseWrite closes standard output so the far side sees the end.
//
// Its endpoint is "stdio://", with no address. Listening gives that one
// connection to the first Accept; later Accepts wait until it is closed
// and then say net.ErrClosed, so a bridge from stdio:// serves one
// connection and ends:
//
//	ssh -o ProxyCommand='tether bridge stdio:// vsock://3:22' vm
//
// Dialing gives the same connection; it can be in use only once at a time.
// Deadlines work where the operating system can wait on the files (pipes
// and sockets; not regular files).
//
// It is written on tether's public API only, like a user's transport.
// Importing this package registers [Transport] in [core.Transports] as
// "stdio".
package stdio

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/internal/fileconn"
)

// Name is the registry name and endpoint scheme.
const Name = "stdio"

// Transport is the standard input and output transport. Its zero value uses
// os.Stdin and os.Stdout; In and Out name other files (a program's pipes,
// or a test's).
type Transport struct {
	In  *os.File // read side; nil means os.Stdin
	Out *os.File // write side; nil means os.Stdout
}

var _ core.Transport = Transport{}

func init() { core.Transports.Register(Transport{}) }

// Name returns "stdio".
func (Transport) Name() string { return Name }

// Addr is the address of the standard streams: there is only one.
type Addr struct{}

// Network returns "stdio".
func (Addr) Network() string { return Name }

// String returns "" (the endpoint is "stdio://").
func (Addr) String() string { return "" }

// ParseAddr accepts only the empty address.
func (Transport) ParseAddr(address string) (net.Addr, error) {
	if address != "" {
		return nil, errors.New("stdio: takes no address: write stdio://")
	}
	return Addr{}, nil
}

func (t Transport) files() (*os.File, *os.File) {
	in, out := t.In, t.Out
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	return in, out
}

// inUse holds the connections open on each input file: the streams make
// one connection at a time.
var inUse sync.Map // *os.File -> *Conn

func (t Transport) open(op string) (*Conn, error) {
	if _, err := t.ParseAddr(""); err != nil {
		return nil, err
	}
	in, out := t.files()
	c := &Conn{f: fileconn.New(Name, Addr{}, in, out), in: in, done: make(chan struct{})}
	if _, busy := inUse.LoadOrStore(in, c); busy {
		return nil, &net.OpError{Op: op, Net: Name, Addr: Addr{}, Err: errors.New("standard input and output are already in use by another connection")}
	}
	return c, nil
}

// Dial returns the connection over the standard streams.
func (t Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	if _, err := t.ParseAddr(address); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: Name, Addr: Addr{}, Err: err}
	}
	return t.open("dial")
}

// Listen returns a listener whose first Accept gives the connection over
// the standard streams.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	if _, err := t.ParseAddr(address); err != nil {
		return nil, err
	}
	return &Listener{t: t, closed: make(chan struct{})}, nil
}

// Listener hands out the one connection, then waits for it to end.
type Listener struct {
	t       Transport
	mu      sync.Mutex
	given   *Conn
	closed  chan struct{}
	closing sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Accept returns the connection the first time; later calls wait until it
// is closed, or the listener is, and return net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.closed == nil {
		return nil, net.ErrClosed
	}
	l.mu.Lock()
	given := l.given
	if given == nil {
		select {
		case <-l.closed:
		default:
			c, err := l.t.open("accept")
			if err != nil {
				l.mu.Unlock()
				return nil, err
			}
			l.given = c
			l.mu.Unlock()
			return c, nil
		}
	}
	l.mu.Unlock()
	if given != nil {
		select {
		case <-given.done:
		case <-l.closed:
		}
	}
	return nil, &net.OpError{Op: "accept", Net: Name, Addr: Addr{}, Err: net.ErrClosed}
}

// Close stops the listener; a connection already given stays open.
func (l *Listener) Close() error {
	if l == nil || l.closed == nil {
		return net.ErrClosed
	}
	l.closing.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the stdio address.
func (l *Listener) Addr() net.Addr { return Addr{} }

// Conn is the connection over the standard streams.
type Conn struct {
	f         *fileconn.Files // reads standard input, writes standard output
	in        *os.File        // standard input, the key in inUse
	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

var _ net.Conn = (*Conn)(nil)

var errNoConn = errors.New("stdio: this Conn was not made by the transport")

func (c *Conn) ok() bool { return c != nil && c.f != nil }

// files is the streams; nil (which answers fileconn.ErrNoFiles) for a Conn
// not made by the transport.
func (c *Conn) files() *fileconn.Files {
	if c == nil {
		return nil
	}
	return c.f
}

// Read reads standard input.
func (c *Conn) Read(p []byte) (int, error) { return c.files().Read(p) }

// Write writes standard output.
func (c *Conn) Write(p []byte) (int, error) { return c.files().Write(p) }

// CloseWrite closes standard output: the far side reads to its end.
func (c *Conn) CloseWrite() error { return c.files().CloseWrite() }

// Close closes both streams and frees them for another connection.
func (c *Conn) Close() error {
	if !c.ok() {
		return errNoConn
	}
	err := c.f.CloseWrite()
	c.closeOnce.Do(func() {
		if cerr := c.f.CloseRead(); err == nil {
			err = cerr
		}
		inUse.Delete(c.in)
		close(c.done)
	})
	return err
}

// LocalAddr returns the stdio address.
func (c *Conn) LocalAddr() net.Addr { return Addr{} }

// RemoteAddr returns the stdio address: the peer is whoever holds the
// other ends of the streams.
func (c *Conn) RemoteAddr() net.Addr { return Addr{} }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.files().SetDeadline(t) }

// SetReadDeadline sets standard input's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.files().SetReadDeadline(t) }

// SetWriteDeadline sets standard output's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.files().SetWriteDeadline(t) }
