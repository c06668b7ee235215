// Package unix is the unix-domain socket transport, for processes on one host.
//
// Addresses are file system paths ("/run/chat.sock", "chat.sock") or, on
// Linux, abstract names written with a leading '@' ("@chat"). In the
// endpoint form a path is absolute ("unix:///run/chat.sock") or explicitly
// relative ("unix://./chat.sock"); "unix://run/chat.sock" is refused, as a
// slash probably went missing.
//
// A path socket is owner-only (mode 0600) from the moment it exists, and is
// widened to the mode and group asked for only after that: on Linux the
// mode is set on the socket before it is bound, elsewhere the process umask
// is narrowed around the bind. A stale socket file that nobody listens on is
// replaced, a live one never is, and the file is removed on Close only if it
// is still the one this listener created.
//
// Accepted connections report the peer's process credentials (SO_PEERCRED,
// on Linux) as their RemoteAddr, a [*PeerAddr]; the options allow-uid and
// allow-gid admit only the users and groups named.
//
// Importing this package registers [Transport] in [core.Transports] as "unix".
package unix

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/internal/sockconn"
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
	// Mode is the permission of a new socket file; 0 means DefaultMode. The
	// file is created owner-only and widened to Mode only after that.
	Mode os.FileMode
	// Group, when not nil, is the group id given to a new socket file
	// (before it is widened to Mode), for sharing with a mode such as 0660.
	Group *int
	// AllowUIDs and AllowGIDs, when either is set, admit only peers whose
	// user is in AllowUIDs or whose group is in AllowGIDs.
	AllowUIDs, AllowGIDs []uint32
}

var (
	_ core.Transport        = Transport{}
	_ core.Configurable     = Transport{}
	_ core.DefaultAddresser = Transport{}
	_ core.BareMatcher      = Transport{}
	_ core.EndpointParser   = Transport{}
	_ core.Ephemeral        = Transport{}
	_ core.Diagnoser        = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "unix".
func (Transport) Name() string { return Name }

// Options lists socket-mode, socket-group, allow-uid and allow-gid.
func (Transport) Options() []core.Option {
	return []core.Option{
		{Name: "socket-mode", Use: core.ForListen, Usage: "permissions of the socket file, in octal (default 0600: owner only); widened only after it is created owner-only"},
		{Name: "socket-group", Use: core.ForListen, Usage: "group owning the socket file (name or number), for sharing with socket-mode 0660"},
		{Name: "allow-uid", Use: core.ForListen, Multi: true, Usage: "admit only peers running as these user ids (comma-separated numbers; checked with the peer's credentials)"},
		{Name: "allow-gid", Use: core.ForListen, Multi: true, Usage: "admit only peers whose primary group is one of these group ids"},
	}
}

// Configure returns a copy of t with the options set.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	bad := func(name, value string, err error) error {
		return &core.OptionError{Transport: Name, Option: name, Value: value, Err: err}
	}
	if v := opts.Get("socket-mode"); v != "" {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m > 0o777 || m == 0 {
			return nil, bad("socket-mode", v, errors.New("want an octal mode such as 0600 or 0660"))
		}
		t.Mode = os.FileMode(m)
	}
	if v := opts.Get("socket-group"); v != "" {
		gid, err := lookupGroup(v)
		if err != nil {
			return nil, bad("socket-group", v, err)
		}
		t.Group = &gid
	}
	for _, o := range []struct {
		name string
		dst  *[]uint32
	}{{"allow-uid", &t.AllowUIDs}, {"allow-gid", &t.AllowGIDs}} {
		if vals, ok := opts[o.name]; ok {
			ids, err := parseIDs(vals)
			if err != nil {
				return nil, bad(o.name, strings.Join(vals, ","), err)
			}
			*o.dst = append(slices.Clone(*o.dst), ids...)
		}
	}
	return t, nil
}

func parseIDs(vals []string) ([]uint32, error) {
	var ids []uint32
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(part), 10, 32)
			if err != nil {
				return nil, errors.New("want numbers such as 1000 or 1000,1001")
			}
			ids = append(ids, uint32(n))
		}
	}
	return ids, nil
}

// DefaultAddress is a per-user socket path that needs no set-up:
// $XDG_RUNTIME_DIR/tether.sock, or tether-UID/tether.sock in the temporary
// directory (created owner-only when listening).
func (Transport) DefaultAddress() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return filepath.Join(dir, "tether.sock")
		}
	}
	return filepath.Join(privateTempDir(), "tether.sock")
}

func privateTempDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("tether-%d", os.Getuid()))
}

// MatchBare is certain of an address with a '/' or a leading '@', and
// takes any other text as a possible file name.
func (Transport) MatchBare(address string) core.Match {
	if strings.HasPrefix(address, "@") || strings.Contains(address, "/") {
		return core.Certain
	}
	return core.Fallback
}

// EphemeralAddress returns a path in a new private temporary directory,
// which release removes.
func (Transport) EphemeralAddress() (string, func(), error) {
	dir, err := os.MkdirTemp("", "tether-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "s.sock"), func() { os.RemoveAll(dir) }, nil
}

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

// ParseEndpointAddr checks the address of "unix://ADDRESS": an absolute
// path, an explicitly relative one ("./x.sock") or an abstract name.
func (t Transport) ParseEndpointAddr(address string) (net.Addr, error) {
	if !strings.HasPrefix(address, "/") && !strings.HasPrefix(address, "@") &&
		!strings.HasPrefix(address, "./") && !strings.HasPrefix(address, "../") {
		return nil, fmt.Errorf("unix: endpoint unix://%s: write unix:///%s for an absolute path, or unix://./%s for a relative one", address, address, address)
	}
	return t.ParseAddr(address)
}

func parse(address string) (*Addr, error) {
	switch {
	case address == "" || address == "@":
		return nil, errors.New("unix: empty socket path: give a path such as /tmp/chat.sock or an abstract name such as @chat")
	case len(address) > MaxPathLen+1 && address[0] == '@':
		return nil, &PathTooLongError{Path: address, Limit: MaxPathLen + 1}
	case len(address) > MaxPathLen && address[0] != '@':
		return nil, &PathTooLongError{Path: address, Limit: MaxPathLen}
	case strings.IndexByte(address, 0) >= 0:
		return nil, errors.New("unix: socket path contains a NUL byte")
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
	if (len(t.AllowUIDs) > 0 || len(t.AllowGIDs) > 0) && !credentialsSupported {
		return nil, &core.NotSupportedError{What: "unix: admitting by allow-uid or allow-gid needs peer credentials, which", OS: goos}
	}
	fail := func(err error) error { return &net.OpError{Op: "listen", Net: Name, Addr: a, Err: err} }
	if a.Abstract() {
		if t.Mode != 0 || t.Group != nil {
			return nil, fail(errors.New("an abstract socket has no file to give a mode or group: use a path socket to share it by permissions"))
		}
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "unix", a.Path)
		if err != nil {
			return nil, err
		}
		return &Listener{l: l.(*net.UnixListener), rules: t.rules()}, nil
	}
	if filepath.Dir(a.Path) == privateTempDir() {
		if err := preparePrivateDir(filepath.Dir(a.Path)); err != nil {
			return nil, fail(err)
		}
	}
	if err := removeStale(ctx, a.Path); err != nil {
		return nil, err
	}
	if !fileModes {
		if t.Mode != 0 || t.Group != nil {
			return nil, &core.NotSupportedError{What: "unix: socket-mode and socket-group", OS: goos}
		}
		l, err := listenOwnerOnly(ctx, a.Path, DefaultMode)
		if err != nil {
			return nil, err
		}
		return &Listener{l: l, rules: t.rules()}, nil
	}
	mode := t.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	// Bound with at most the owner's bits of the mode asked for (and never
	// more than the umask allows), then given its group, then widened.
	l, err := listenOwnerOnly(ctx, a.Path, mode&0o700)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fail(fmt.Errorf("%s appeared while binding: %w", a.Path, syscall.EADDRINUSE))
		}
		return nil, err
	}
	l.SetUnlinkOnClose(false) // Close removes the file only if it is still ours
	cleanup := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(a.Path)
		return nil, fail(err)
	}
	if t.Group != nil {
		if err := os.Lchown(a.Path, -1, *t.Group); err != nil {
			return cleanup(err)
		}
	}
	if err := os.Chmod(a.Path, mode); err != nil {
		return cleanup(err)
	}
	info, err := os.Lstat(a.Path)
	if err != nil {
		return cleanup(err)
	}
	core.TransportLogger(ctx, Name).Debug("listening", "path", a.Path, "mode", mode)
	return &Listener{l: l, path: a.Path, created: info, rules: t.rules()}, nil
}

// Wrap adopts a listener made elsewhere (a socket systemd passed): its
// connections report their peers' credentials, and the transport's
// admission rules apply. The socket file, if any, is left to its owner.
func (t Transport) Wrap(l *net.UnixListener) *Listener {
	if l != nil {
		l.SetUnlinkOnClose(false)
	}
	return &Listener{l: l, rules: t.rules()}
}

// preparePrivateDir creates the default socket's private directory when
// needed, and refuses one that another user could tamper with.
func preparePrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s for the default socket: %w (choose another address)", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByMe(fi) {
		return fmt.Errorf("%s is not a private directory of yours (mode %v); remove it or choose another address", dir, fi.Mode())
	}
	return nil
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
	inUse := func(err error) error {
		return &net.OpError{Op: "listen", Net: Name, Addr: &Addr{Path: path}, Err: fmt.Errorf("%w: %w", err, syscall.EADDRINUSE)}
	}
	if fi.Mode().Type() != os.ModeSocket {
		return inUse(fmt.Errorf("%s exists and is not a socket; refusing to replace it", path))
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "unix", path)
	if err == nil {
		c.Close()
		return inUse(fmt.Errorf("a server is already listening on %s (stop it or choose another path)", path))
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return inUse(fmt.Errorf("cannot tell whether %s is in use (%v); remove it if it is stale", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unix: removing stale socket %s: %w", path, err)
	}
	core.TransportLogger(ctx, Name).Info("replaced a stale socket nobody was listening on", "path", path)
	return nil
}

// rules returns the admission rules, or nil when everyone is admitted.
func (t Transport) rules() *rules {
	if len(t.AllowUIDs) == 0 && len(t.AllowGIDs) == 0 {
		return nil
	}
	return &rules{uids: t.AllowUIDs, gids: t.AllowGIDs}
}

// rules admits peers by their credentials.
type rules struct {
	uids, gids []uint32
}

func (r *rules) admit(c net.Conn) error {
	p, ok := c.RemoteAddr().(*PeerAddr)
	if !ok {
		return errors.New("the peer's credentials are unknown, so allow-uid and allow-gid cannot admit it")
	}
	if slices.Contains(r.uids, p.UID) || slices.Contains(r.gids, p.GID) {
		return nil
	}
	return fmt.Errorf("uid %d / gid %d is not allowed (allow-uid %s, allow-gid %s)", p.UID, p.GID, ids(r.uids), ids(r.gids))
}

func ids(l []uint32) string {
	if len(l) == 0 {
		return "none"
	}
	parts := make([]string, len(l))
	for i, n := range l {
		parts[i] = strconv.FormatUint(uint64(n), 10)
	}
	return strings.Join(parts, ",")
}

// Listener is a unix socket listener. Its Accept returns connections that
// report the peer's credentials as their RemoteAddr, its Admit applies the
// allow-uid and allow-gid rules, and its Close removes the socket file if
// it is still the one it created. Its zero value answers with errors.
type Listener struct {
	l       *net.UnixListener
	path    string      // "" for abstract sockets
	created os.FileInfo // the socket file as created, to recognise it on Close
	rules   *rules      // nil: everyone is admitted
}

var (
	_ net.Listener  = (*Listener)(nil)
	_ core.Admitter = (*Listener)(nil)
)

var errNoListener = errors.New("unix: this Listener was not made by Transport.Listen")

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.l == nil {
		return nil, errNoListener
	}
	c, err := l.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	var peer net.Addr
	if cred := peerCredentials(c); cred != nil {
		peer = cred
	}
	return sockconn.New(c, nil, peer), nil
}

// Admit refuses a peer that the allow-uid and allow-gid rules leave out.
func (l *Listener) Admit(c net.Conn) error {
	if l == nil || l.rules == nil {
		return nil
	}
	return l.rules.admit(c)
}

// Addr returns the listener's typed address.
func (l *Listener) Addr() net.Addr {
	switch {
	case l == nil || l.l == nil:
		return nil
	case l.path != "":
		return &Addr{Path: l.path}
	}
	return &Addr{Path: l.l.Addr().String()}
}

// Close stops listening and removes the socket file if it is still the one
// this listener created (not a file another server put there since).
func (l *Listener) Close() error {
	if l == nil || l.l == nil {
		return errNoListener
	}
	err := l.l.Close()
	if l.path != "" {
		if fi, statErr := os.Lstat(l.path); statErr == nil && os.SameFile(fi, l.created) {
			os.Remove(l.path)
		}
	}
	return err
}

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

// Diagnose reports the path limits, the default socket, and whether peer
// credentials are available.
func (t Transport) Diagnose(context.Context) []core.Finding {
	def := t.DefaultAddress()
	sock := def
	if fi, err := os.Lstat(def); err == nil && fi.Mode().Type() == os.ModeSocket {
		sock += fmt.Sprintf(" (a socket file exists, mode %v)", fi.Mode().Perm())
	}
	creds := "available: peers are named by uid and pid, and allow-uid/allow-gid work"
	if !credentialsSupported {
		creds = "not supported on this system: peers are named by address only"
	}
	return []core.Finding{
		{Topic: "path limit", Text: fmt.Sprintf("%d bytes (abstract names: %d)", MaxPathLen, MaxPathLen+1)},
		{Topic: "default socket", Text: sock},
		{Topic: "peer credentials", Text: creds},
	}
}
