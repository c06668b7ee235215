// Package systemd is the transport of sockets that systemd passes a service
// it starts by socket activation (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES),
// read with github.com/coreos/go-systemd's activation package.
//
// "systemd://NAME" is the passed socket named NAME (FileDescriptorName= in
// the .socket unit; unnamed sockets are LISTEN_FD_3, LISTEN_FD_4, …), and
// "systemd://" is every passed socket at once. Unix, TCP and vsock stream
// sockets (ListenStream=/run/x.sock, ListenStream=7000,
// ListenStream=vsock::5000) are served the way their own transports serve
// them: unix peers by their credentials, vsock peers by their CID, with the
// same admission options (allow-uid, allow-gid, allow-net, allow-cid).
// Each socket is given out once. Dialing is refused.
//
// Importing this package registers [Transport] in [core.Transports] as
// "systemd"; github.com/tetherkit/tether/transports/all makes it the
// default transport when the process was started with sockets.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
	"github.com/tetherkit/tether/transports/vsock"
)

// Name is the registry name and endpoint scheme.
const Name = "systemd"

// Transport serves passed sockets with the rules of the transports of
// their families.
type Transport struct {
	Unix  unix.Transport
	TCP   tcp.Transport
	Vsock vsock.Transport
}

var (
	_ core.Transport        = Transport{}
	_ core.Configurable     = Transport{}
	_ core.DefaultAddresser = Transport{}
	_ core.Diagnoser        = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "systemd".
func (Transport) Name() string { return Name }

// Activated reports whether systemd passed this process sockets. It does
// not take them.
func Activated() bool {
	passed.mu.Lock()
	defer passed.mu.Unlock()
	if passed.taken {
		return len(passed.files) > 0
	}
	pid, _ := strconv.Atoi(os.Getenv("LISTEN_PID"))
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	return pid == os.Getpid() && n > 0
}

// passed holds the sockets systemd passed, taken once, and which are in use.
var passed struct {
	mu    sync.Mutex
	taken bool
	files []*os.File
	used  []bool
}

// sockets takes the passed sockets on first use.
func sockets() ([]*os.File, []bool) {
	if !passed.taken {
		passed.files = activation.Files(true) // and unset the variables, so children do not see them
		passed.used = make([]bool, len(passed.files))
		passed.taken = true
	}
	return passed.files, passed.used
}

// Diagnose says whether this process was passed sockets, and their names,
// without taking them.
func (Transport) Diagnose(context.Context) []core.Finding {
	if !Activated() {
		return []core.Finding{{Topic: "passed sockets", Text: "none: a .socket unit passes them (ListenStream=), or systemd-socket-activate -l ADDRESS tether serve, for a try"}}
	}
	passed.mu.Lock()
	defer passed.mu.Unlock()
	if passed.taken {
		names := make([]string, len(passed.files))
		for i, f := range passed.files {
			names[i] = f.Name()
		}
		return []core.Finding{{Topic: "passed sockets", Text: strings.Join(names, ", ")}}
	}
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	text := fmt.Sprintf("%d, unnamed (LISTEN_FD_3 on)", n)
	if names := os.Getenv("LISTEN_FDNAMES"); names != "" {
		text = fmt.Sprintf("%d: %s", n, strings.ReplaceAll(names, ":", ", "))
	}
	return []core.Finding{{Topic: "passed sockets", Text: text}}
}

// inner lists the transports whose options this one takes.
func (t Transport) inner() []core.Transport { return []core.Transport{t.Unix, t.TCP, t.Vsock} }

// Options lists the admission options of the unix, tcp and vsock
// transports.
func (t Transport) Options() []core.Option {
	var opts []core.Option
	for _, in := range t.inner() {
		for _, o := range core.TransportOptions(in) {
			if strings.HasPrefix(o.Name, "allow-") && !slices.ContainsFunc(opts, func(x core.Option) bool { return x.Name == o.Name }) {
				opts = append(opts, o)
			}
		}
	}
	return opts
}

// Configure returns a copy of t with the options given to the transports
// that take them.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	for i, in := range t.inner() {
		c, err := core.Configure(in, opts)
		if err != nil {
			return nil, err
		}
		switch i {
		case 0:
			t.Unix = c.(unix.Transport)
		case 1:
			t.TCP = c.(tcp.Transport)
		case 2:
			t.Vsock = c.(vsock.Transport)
		}
	}
	return t, nil
}

// DefaultAddress is "": every passed socket.
func (Transport) DefaultAddress() string { return "" }

// Addr names a passed socket; the empty name is all of them.
type Addr struct{ Name string }

// Network returns "systemd".
func (Addr) Network() string { return Name }

// String returns the name.
func (a Addr) String() string { return a.Name }

// ParseAddr checks a socket name: any text without ':' (which separates
// LISTEN_FDNAMES), or "" for all.
func (Transport) ParseAddr(address string) (net.Addr, error) {
	if strings.ContainsRune(address, ':') {
		return nil, fmt.Errorf("systemd: socket name %q: names cannot hold ':'", address)
	}
	return Addr{Name: address}, nil
}

// Dial is refused: systemd passes sockets to listen on.
func (Transport) Dial(context.Context, string) (net.Conn, error) {
	return nil, errors.New("systemd: cannot dial: it serves the sockets systemd passed; dial their own endpoints (unix://, tcp://, vsock://)")
}

// Listen serves the passed socket of that name, or every passed socket for
// "".
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	if _, err := t.ParseAddr(address); err != nil {
		return nil, err
	}
	passed.mu.Lock()
	defer passed.mu.Unlock()
	files, used := sockets()
	if len(files) == 0 {
		return nil, errors.New("systemd: no sockets were passed to this process (LISTEN_FDS and LISTEN_PID): start it from a .socket unit, or with systemd-socket-activate")
	}
	var picked []int
	var names []string
	for i, f := range files {
		names = append(names, f.Name())
		if (address == "" || f.Name() == address) && !used[i] {
			picked = append(picked, i)
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("systemd: no unused socket named %q was passed (passed: %s)", address, strings.Join(names, ", "))
	}
	var ls []net.Listener
	for _, i := range picked {
		l, err := t.adopt(files[i])
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("systemd: socket %s: %w", files[i].Name(), err)
		}
		ls = append(ls, l)
	}
	log := core.TransportLogger(ctx, Name)
	for k, i := range picked {
		used[i] = true
		files[i].Close() // each listener holds its own copy
		log.Info("serving a passed socket", "name", files[i].Name(), "network", ls[k].Addr().Network(), "address", ls[k].Addr().String())
	}
	return newMerged(ls, Addr{Name: address}), nil
}

// merged serves one or more passed sockets as one listener, whose address
// is the systemd name.
type merged struct {
	ls     []net.Listener
	addr   net.Addr
	conns  chan acceptResult
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	admit  map[string]core.Admitter // by the accepted connection's local network
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newMerged(ls []net.Listener, addr net.Addr) *merged {
	m := &merged{ls: ls, addr: addr, conns: make(chan acceptResult), closed: make(chan struct{}), admit: map[string]core.Admitter{}}
	for _, l := range ls {
		if a, ok := l.(core.Admitter); ok {
			m.admit[l.Addr().Network()] = a
		}
		m.wg.Add(1)
		go m.accept(l)
	}
	go func() { m.wg.Wait(); close(m.conns) }()
	return m
}

func (m *merged) accept(l net.Listener) {
	defer m.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case m.conns <- acceptResult{c, err}:
		case <-m.closed:
			if c != nil {
				c.Close()
			}
			return
		}
	}
}

// Accept returns the next connection from any of the sockets.
func (m *merged) Accept() (net.Conn, error) {
	select {
	case r, ok := <-m.conns:
		if !ok {
			return nil, net.ErrClosed
		}
		return r.c, r.err
	case <-m.closed:
		return nil, net.ErrClosed
	}
}

// Close closes every socket.
func (m *merged) Close() error {
	m.once.Do(func() {
		close(m.closed)
		for _, l := range m.ls {
			l.Close()
		}
	})
	return nil
}

// Addr returns the systemd address.
func (m *merged) Addr() net.Addr { return m.addr }

// Admit applies the rules of the socket's own transport.
func (m *merged) Admit(c net.Conn) error {
	if a, ok := m.admit[c.LocalAddr().Network()]; ok {
		return a.Admit(c)
	}
	return nil
}
