// Package hvsock is the hybrid vsock transport, for hosts whose VMM
// (Firecracker, Cloud Hypervisor) exposes a guest's vsock device as a unix
// socket instead of AF_VSOCK.
//
// An address is "PATH:PORT": PATH is the VMM's vsock socket (Firecracker's
// uds_path) and PORT the guest's vsock port. The endpoint form is
// "hvsock:///run/vm.sock:5000".
//
//   - Dial (host to guest): connect to PATH, send "CONNECT PORT\n", read the
//     VMM's "OK HOSTPORT\n"; the connection is then a stream to the guest's
//     listener. The acknowledgement is read one byte at a time so that not
//     one byte of what the guest sends next is consumed. While the guest is
//     not listening yet the VMM closes the connection; Dial retries with
//     backoff until ctx ends.
//   - Listen (guest to host): the VMM forwards a guest's connection to host
//     port PORT to the unix socket "PATH_PORT"; Listen creates that socket
//     with the unix transport's care (owner-only, stale sockets replaced, a
//     live one never taken over), and takes its socket-mode and
//     socket-group options.
//
// Importing this package registers [Transport] in [core.Transports] as
// "hvsock".
package hvsock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/internal/sockconn"
	"github.com/tetherkit/tether/transports/unix"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "hvsock"

// maxAck bounds the acknowledgement line: "OK " and a 32-bit number.
const maxAck = 32

// Transport is the hybrid vsock transport. The zero value is ready to use.
type Transport struct {
	// Mode is the permission of the PATH_PORT sockets Listen creates; 0
	// means owner-only.
	Mode os.FileMode
	// Group, when not nil, is the group id of the PATH_PORT sockets.
	Group *int
	// Dir is where Diagnose looks for VMM sockets; "" means it does not.
	Dir string
}

var (
	_ core.Transport    = Transport{}
	_ core.Configurable = Transport{}
	_ core.Diagnoser    = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "hvsock".
func (Transport) Name() string { return Name }

// Options lists socket-mode and socket-group (as the unix transport's, for
// the PATH_PORT sockets) and hvsock-dir (where to look when diagnosing).
func (Transport) Options() []core.Option {
	var opts []core.Option
	for _, o := range (unix.Transport{}).Options() {
		if strings.HasPrefix(o.Name, "socket-") {
			opts = append(opts, o)
		}
	}
	return append(opts, core.Option{Name: "hvsock-dir", Use: core.ForDiagnose,
		Usage: "hvsock: look for Firecracker or Cloud Hypervisor vsock sockets (uds_path) under this folder"})
}

// Configure returns a copy of t with the options set.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	sock := url.Values{}
	for key, vals := range opts {
		if key == "hvsock-dir" {
			t.Dir = vals[0]
			continue
		}
		sock[key] = vals
	}
	if len(sock) > 0 {
		u, err := unix.Transport{Mode: t.Mode, Group: t.Group}.Configure(sock)
		if err != nil {
			var oe *core.OptionError
			if errors.As(err, &oe) {
				oe.Transport = Name
			}
			return nil, err
		}
		t.Mode, t.Group = u.(unix.Transport).Mode, u.(unix.Transport).Group
	}
	return t, nil
}

// Addr is a hybrid vsock address: the VMM's socket and a vsock port.
type Addr struct {
	Path string
	Port uint32
}

// Network returns "hvsock".
func (a *Addr) Network() string { return Name }

// String returns "PATH:PORT".
func (a *Addr) String() string { return a.Path + ":" + strconv.FormatUint(uint64(a.Port), 10) }

// ListenPath is the unix socket a VMM forwards guest connections for this
// port to: "PATH_PORT".
func (a *Addr) ListenPath() string { return a.Path + "_" + strconv.FormatUint(uint64(a.Port), 10) }

// ParseAddr checks "PATH:PORT".
func (Transport) ParseAddr(address string) (net.Addr, error) { return parse(address) }

// parse is ParseAddr returning the concrete type.
func parse(address string) (*Addr, error) {
	i := strings.LastIndexByte(address, ':')
	if i <= 0 {
		return nil, fmt.Errorf("hvsock: address %q: want PATH:PORT, such as /run/firecracker/v.sock:5000", address)
	}
	port, err := strconv.ParseUint(address[i+1:], 10, 32)
	if err != nil || port == math.MaxUint32 {
		return nil, fmt.Errorf("hvsock: address %q: port %q is not a number from 0 to %d", address, address[i+1:], uint32(math.MaxUint32-1))
	}
	a := &Addr{Path: address[:i], Port: uint32(port)}
	// Both the VMM's socket and PATH_PORT must fit in a unix address.
	if _, err := (unix.Transport{}).ParseAddr(a.ListenPath()); err != nil {
		return nil, fmt.Errorf("hvsock: %w", err)
	}
	return a, nil
}

// AckError reports a VMM reply that is not "OK <port>\n".
type AckError struct {
	Got []byte // what was read, at most maxAck bytes
}

// Error describes the reply.
func (e *AckError) Error() string {
	return fmt.Sprintf("hvsock: the VMM answered %q instead of \"OK <port>\\n\": is this a Firecracker or Cloud Hypervisor vsock socket?", e.Got)
}

// parseAck parses the VMM's acknowledgement line (without its "\n") and
// returns the host-side port it names.
func parseAck(line []byte) (uint32, error) {
	rest, ok := strings.CutPrefix(string(line), "OK ")
	if !ok {
		return 0, &AckError{Got: line}
	}
	port, err := strconv.ParseUint(rest, 10, 32)
	if err != nil {
		return 0, &AckError{Got: line}
	}
	return uint32(port), nil
}

// errGuestNotListening is a VMM closing the connection before acknowledging:
// Firecracker's way of saying nobody listens on that guest port yet. It
// matches core.ErrNotListening, so a bridge waits for the guest.
var errGuestNotListening error = guestNotListening{}

type guestNotListening struct{}

func (guestNotListening) Error() string { return "the guest is not listening on that port (yet)" }

// Is matches core.ErrNotListening.
func (guestNotListening) Is(target error) bool { return target == core.ErrNotListening }

// Dial connects to the guest's port through the VMM's socket, retrying with
// backoff while the guest is not listening, until ctx ends.
func (Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	log := core.TransportLogger(ctx, Name)
	delay := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c, err := dialOnce(ctx, a)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errGuestNotListening) {
			return nil, err
		}
		log.Debug("guest not listening yet; retrying", "addr", a.String(), "attempt", attempt, "retry_in", delay)
		select {
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: Name, Addr: a,
				Err: fmt.Errorf("%w after %d attempts: %w", errGuestNotListening, attempt, ctx.Err())}
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

func dialOnce(ctx context.Context, a *Addr) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", a.Path)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &net.OpError{Op: "dial", Net: Name, Addr: a,
				Err: fmt.Errorf("no VMM listening at %s (%w): is the VM running with a vsock device whose socket is this path?", a.Path, err)}
		}
		return nil, err
	}
	uc := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		uc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { uc.SetDeadline(time.Unix(1, 0)) })
	hostPort, err := handshake(uc, a.Port)
	stopped := stop()
	if err == nil && !stopped {
		err = ctx.Err() // ctx ended as the handshake finished
	}
	if err != nil {
		uc.Close()
		if ctx.Err() != nil {
			return nil, &net.OpError{Op: "dial", Net: Name, Addr: a, Err: ctx.Err()}
		}
		return nil, err
	}
	uc.SetDeadline(time.Time{})
	// A stream to the guest: its addresses are hybrid vsock ones (the guest
	// port dialed, and the host-side port the VMM acknowledged).
	return sockconn.New(uc, &Addr{Path: a.Path, Port: hostPort}, a), nil
}

// handshake sends CONNECT and reads the acknowledgement byte by byte, so
// that the guest's first bytes stay in the socket for the caller.
func handshake(c net.Conn, port uint32) (uint32, error) {
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", port); err != nil {
		return 0, err
	}
	var buf [maxAck]byte
	n := 0
	for {
		if n == len(buf) {
			return 0, &AckError{Got: buf[:n]}
		}
		m, err := c.Read(buf[n : n+1])
		if m == 1 {
			if buf[n] == '\n' {
				return parseAck(buf[:n])
			}
			n++
			continue
		}
		if err != nil {
			if n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
				return 0, errGuestNotListening
			}
			if n > 0 && err == io.EOF {
				return 0, &AckError{Got: buf[:n]}
			}
			return 0, err
		}
	}
}

// Listen creates the unix socket PATH_PORT on which the VMM delivers guest
// connections to host port PORT.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	l, err := unix.Transport{Mode: t.Mode, Group: t.Group}.Listen(ctx, a.ListenPath())
	if err != nil {
		return nil, err
	}
	return &Listener{l: l, addr: a}, nil
}

// Listener accepts guest connections forwarded by the VMM. Its Addr is the
// hybrid vsock address; accepted connections are unix connections from the
// VMM process.
type Listener struct {
	l    net.Listener // the unix listener on PATH_PORT
	addr *Addr
}

var (
	_ net.Listener  = (*Listener)(nil)
	_ core.Admitter = (*Listener)(nil)
)

var errNoListener = errors.New("hvsock: this Listener was not made by Transport.Listen")

// Accept waits for the next guest connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.l == nil {
		return nil, errNoListener
	}
	return l.l.Accept()
}

// Close stops listening and removes PATH_PORT.
func (l *Listener) Close() error {
	if l == nil || l.l == nil {
		return errNoListener
	}
	return l.l.Close()
}

// Addr returns PATH:PORT.
func (l *Listener) Addr() net.Addr {
	if l == nil || l.addr == nil {
		return nil
	}
	return l.addr
}

// Admit applies the unix listener's rules.
func (l *Listener) Admit(c net.Conn) error {
	if l == nil {
		return nil
	}
	if a, ok := l.l.(core.Admitter); ok {
		return a.Admit(c)
	}
	return nil
}
