// Package unix is the unix-domain socket transport, for processes on one host.
//
// Addresses are file system paths ("/run/chat.sock", "chat.sock") or, on
// Linux, abstract names written with a leading '@' ("@chat"). A path socket is
// created owner-only (mode 0600) from the moment it exists; a stale socket
// file that nobody listens on is replaced, a live one never is; the file is
// removed on Close only if it is still the one this listener created.
//
// Accepted connections report the peer's process credentials (SO_PEERCRED) as
// their RemoteAddr, a [*PeerAddr].
//
// Importing this package registers [Transport] in [core.Transports] as "unix".
package unix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tetherkit/tether/core"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "unix"

// MaxPathLen is the longest socket path the kernel accepts (sun_path holds
// 108 bytes including the terminating NUL). An abstract name ("@x") may use
// all 108 bytes, the '@' included.
const MaxPathLen = 107

// DefaultMode is the permission of a new socket file.
const DefaultMode os.FileMode = 0o600

// Transport is the unix socket transport. The zero value is ready to use.
type Transport struct {
	// Mode is the permission given to a new socket file; 0 means DefaultMode.
	// The file is created owner-only and widened to Mode only after that.
	Mode os.FileMode
}

var _ core.Transport = Transport{}

func init() { core.Transports.Register(Transport{}) }

// Name returns "unix".
func (Transport) Name() string { return Name }

// Addr is a unix socket address.
type Addr struct {
	Path string // file path, or "@name" for an abstract socket
}

// Network returns "unix".
func (a *Addr) Network() string { return Name }

// String returns the path or "@name".
func (a *Addr) String() string { return a.Path }

// Abstract reports whether the address is in the abstract namespace.
func (a *Addr) Abstract() bool { return len(a.Path) > 0 && a.Path[0] == '@' }

// PathTooLongError reports a socket path the kernel cannot hold.
type PathTooLongError struct {
	Path  string
	Limit int
}

// Error describes the failure with its figures.
func (e *PathTooLongError) Error() string {
	return fmt.Sprintf("unix socket path is %d bytes, longer than the kernel's limit of %d: use a shorter path (for example under /tmp or $XDG_RUNTIME_DIR): %s",
		len(e.Path), e.Limit, e.Path)
}

// ParseAddr checks a socket path or "@name".
func (Transport) ParseAddr(address string) (net.Addr, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func parse(address string) (*Addr, error) {
	switch {
	case address == "" || address == "@":
		return nil, errors.New("unix: empty socket path: give a path such as /tmp/chat.sock or an abstract name such as @chat")
	case len(address) > MaxPathLen+1 && address[0] == '@':
		return nil, &PathTooLongError{Path: address, Limit: MaxPathLen + 1}
	case len(address) > MaxPathLen && address[0] != '@':
		return nil, &PathTooLongError{Path: address, Limit: MaxPathLen}
	}
	for i := 0; i < len(address); i++ {
		if address[i] == 0 {
			return nil, errors.New("unix: socket path contains a NUL byte")
		}
	}
	return &Addr{Path: address}, nil
}

// Dial connects to the socket at address.
func (Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", a.Path)
}

// Listen creates the socket at address. See the package documentation for
// the care taken with existing files and permissions.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if a.Abstract() {
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "unix", a.Path)
		if err != nil {
			return nil, err
		}
		return &Listener{UnixListener: l.(*net.UnixListener)}, nil
	}
	if err := removeStale(ctx, a.Path); err != nil {
		return nil, err
	}
	l, info, err := bindPrivate(ctx, a.Path)
	if err != nil {
		return nil, err
	}
	ln := &Listener{UnixListener: l, path: a.Path, created: info}
	core.TransportLogger(ctx, Name).Debug("listening", "path", a.Path, "mode", DefaultMode)
	if mode := t.Mode; mode != 0 && mode != DefaultMode {
		if err := ln.SetMode(mode); err != nil {
			ln.Close()
			return nil, err
		}
	}
	return ln, nil
}

// removeStale removes a socket file at path that nobody listens on. A live
// socket, or a file that is not a socket, is left alone and reported.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return &net.OpError{Op: "listen", Net: "unix", Addr: &Addr{Path: path},
			Err: fmt.Errorf("%s exists and is not a socket; refusing to replace it: %w", path, syscall.EADDRINUSE)}
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "unix", path)
	if err == nil {
		c.Close()
		return &net.OpError{Op: "listen", Net: "unix", Addr: &Addr{Path: path},
			Err: fmt.Errorf("a server is already listening on %s (stop it or choose another path): %w", path, syscall.EADDRINUSE)}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return &net.OpError{Op: "listen", Net: "unix", Addr: &Addr{Path: path},
			Err: fmt.Errorf("cannot tell whether %s is in use (%v); remove it if it is stale: %w", path, err, syscall.EADDRINUSE)}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unix: removing stale socket %s: %w", path, err)
	}
	core.TransportLogger(ctx, Name).Info("replaced a stale socket nobody was listening on", "path", path)
	return nil
}

// bindPrivate binds the socket inside a fresh owner-only directory next to
// path, makes the socket file owner-only, and hard-links it into place, so the
// socket is never reachable with wider permissions. link(2) never replaces a
// file: one that appeared at path since removeStale looked is reported.
func bindPrivate(ctx context.Context, path string) (*net.UnixListener, os.FileInfo, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".tether-")
	if err != nil {
		return nil, nil, &net.OpError{Op: "listen", Net: "unix", Addr: &Addr{Path: path}, Err: err}
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, nil, err
	}
	ul := l.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, os.FileInfo, error) {
		ul.Close()
		return nil, nil, &net.OpError{Op: "listen", Net: "unix", Addr: &Addr{Path: path}, Err: err}
	}
	if err := os.Chmod(tmp, DefaultMode); err != nil {
		return fail(err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			err = fmt.Errorf("%s appeared while binding: %w", path, syscall.EADDRINUSE)
		}
		return fail(err)
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ul, info, nil
}

// Listener is a unix socket listener. It is a *net.UnixListener whose Accept
// returns connections that report the peer's credentials, and whose Close
// removes the socket file if it is still the one it created.
type Listener struct {
	*net.UnixListener
	path    string      // "" for abstract sockets
	created os.FileInfo // the socket file as created, to recognise it on Close
}

var _ net.Listener = (*Listener)(nil)

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.UnixListener.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return newConn(c), nil
}

// Addr returns the listener's typed address.
func (l *Listener) Addr() net.Addr {
	if l.path != "" {
		return &Addr{Path: l.path}
	}
	return &Addr{Path: l.UnixListener.Addr().String()}
}

// SetMode changes the socket file's permissions (for shared use, such as
// 0660 with a common group). It is an error on abstract sockets.
func (l *Listener) SetMode(mode os.FileMode) error {
	if l.path == "" {
		return errors.New("unix: an abstract socket has no file mode; use a path socket to share it by permissions")
	}
	return os.Chmod(l.path, mode)
}

// SetGroup gives the socket file to group gid (for shared use with a mode
// such as 0660). It is an error on abstract sockets.
func (l *Listener) SetGroup(gid int) error {
	if l.path == "" {
		return errors.New("unix: an abstract socket has no file group")
	}
	return os.Lchown(l.path, -1, gid)
}

// Close stops listening and removes the socket file if it is still the one
// this listener created (not a file another server put there since).
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if l.path != "" {
		if fi, statErr := os.Lstat(l.path); statErr == nil && os.SameFile(fi, l.created) {
			os.Remove(l.path)
		}
	}
	return err
}
