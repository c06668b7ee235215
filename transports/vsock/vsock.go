// Package vsock is the VM sockets (AF_VSOCK) transport, for talking between a
// virtual machine and its host without any network, through
// github.com/mdlayher/vsock.
//
// Addresses are "CID:PORT". The CID is a number or a name: "hypervisor" (0),
// "local" (1), "host" (2), or "any" (listen on every CID); it may also be
// written as the library prints it, "vm(3)" or "host(2)". An empty CID
// (":5000") means any when listening. The endpoint form is
// "vsock://host:5000". A guest dials "host:PORT"; a host dials the guest's
// CID, such as "3:PORT".
//
// Accepted connections report the peer as a [*PeerAddr], whose String is
// "vm(3):PORT" or "host(2):PORT": the CID is the peer's identity, and the
// option allow-cid admits only the CIDs named.
//
// vsock is Linux's; elsewhere Listen and Dial say it is not supported on
// this system.
//
// Importing this package registers [Transport] in [core.Transports] as
// "vsock".
package vsock

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/vsock"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/internal/sockconn"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "vsock"

// Well-known context IDs.
const (
	Hypervisor uint32 = 0
	Local      uint32 = 1
	Host       uint32 = 2
	// Any is VMADDR_CID_ANY: listen on every CID of this machine.
	Any uint32 = math.MaxUint32
)

// Transport is the vsock transport. The zero value is ready to use.
type Transport struct {
	// AllowCIDs, when set, admits only peers with these context IDs.
	AllowCIDs []uint32
}

var (
	_ core.Transport    = Transport{}
	_ core.Configurable = Transport{}
	_ core.Diagnoser    = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "vsock".
func (Transport) Name() string { return Name }

// Options lists allow-cid.
func (Transport) Options() []core.Option {
	return []core.Option{{Name: "allow-cid", Use: core.ForListen, Multi: true,
		Usage: "admit only peers with these context IDs (comma-separated numbers, or host)"}}
}

// Configure returns a copy of t with the options set.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	if vals, ok := opts["allow-cid"]; ok {
		cids := slices.Clone(t.AllowCIDs)
		for _, v := range vals {
			for _, part := range strings.Split(v, ",") {
				cid, err := parseCID(strings.TrimSpace(part))
				if err != nil || cid == Any {
					return nil, &core.OptionError{Transport: Name, Option: "allow-cid", Value: strings.Join(vals, ","), Err: errors.New("want context IDs such as 3 or 3,4 (or host)")}
				}
				cids = append(cids, cid)
			}
		}
		t.AllowCIDs = cids
	}
	return t, nil
}

// supported reports an error on systems without vsock.
func supported() error {
	if runtime.GOOS != "linux" {
		return &core.NotSupportedError{What: "vsock", OS: runtime.GOOS}
	}
	return nil
}

// Addr is a vsock address: a context ID and a port.
type Addr struct {
	CID  uint32
	Port uint32
}

// Network returns "vsock".
func (a *Addr) Network() string { return Name }

// String returns "NAME:PORT" for the well-known CIDs ("host:5000",
// "any:5000") and "CID:PORT" otherwise; ParseAddr reads it back.
func (a *Addr) String() string {
	return cidName(a.CID) + ":" + strconv.FormatUint(uint64(a.Port), 10)
}

// cidName returns "hypervisor", "local", "host", "any", or the number.
func cidName(cid uint32) string {
	switch cid {
	case Hypervisor:
		return "hypervisor"
	case Local:
		return "local"
	case Host:
		return "host"
	case Any:
		return "any"
	}
	return strconv.FormatUint(uint64(cid), 10)
}

var cidNames = map[string]uint32{"hypervisor": Hypervisor, "local": Local, "host": Host, "any": Any, "": Any}

// ParseAddr checks "CID:PORT". CIDs and ports are unsigned 32-bit numbers;
// port 4294967295 (VMADDR_PORT_ANY) is refused.
func (Transport) ParseAddr(address string) (net.Addr, error) {
	return parse(address)
}

// parse is ParseAddr returning the concrete type.
func parse(address string) (*Addr, error) {
	i := strings.LastIndexByte(address, ':')
	if i < 0 {
		return nil, fmt.Errorf("vsock: address %q: want CID:PORT, such as host:5000, 3:5000 or any:5000", address)
	}
	cidText, portText := address[:i], address[i+1:]
	cid, err := parseCID(cidText)
	if err != nil {
		return nil, fmt.Errorf("vsock: address %q: %w", address, err)
	}
	port, err := strconv.ParseUint(portText, 10, 32)
	if err != nil || port == math.MaxUint32 {
		return nil, fmt.Errorf("vsock: address %q: port %q is not a number from 0 to %d", address, portText, uint32(math.MaxUint32-1))
	}
	return &Addr{CID: cid, Port: uint32(port)}, nil
}

func parseCID(s string) (uint32, error) {
	// The library's own form: "vm(3)", "host(2)", "local(1)", "hypervisor(0)".
	if open := strings.IndexByte(s, '('); open > 0 && strings.HasSuffix(s, ")") {
		s = s[open+1 : len(s)-1]
	}
	if cid, ok := cidNames[strings.ToLower(s)]; ok {
		return cid, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("CID %q is not a number from 0 to %d nor one of hypervisor, local, host, any", s, uint32(math.MaxUint32))
	}
	return uint32(n), nil
}

// Listen listens on address. A CID of "any" (or none, ":5000") accepts on
// every CID of this machine, which is what a host or a guest usually wants.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if err := supported(); err != nil {
		return nil, err
	}
	l, err := vsock.ListenContextID(a.CID, a.Port, nil)
	if err != nil {
		return nil, explain("listen", a, err)
	}
	if va, ok := l.Addr().(*vsock.Addr); ok {
		a.Port = va.Port // the port the kernel chose for port 0
	}
	core.TransportLogger(ctx, Name).Debug("listening", "cid", cidName(a.CID), "port", a.Port)
	return &Listener{l: l, addr: a, allow: t.AllowCIDs}, nil
}

// Wrap adopts a listener made elsewhere (a socket systemd passed): its
// connections report their peers' CIDs, and the allow-cid rule applies.
func (t Transport) Wrap(l *vsock.Listener) *Listener {
	a := &Addr{CID: Any}
	if l == nil {
		return &Listener{addr: a, allow: t.AllowCIDs}
	}
	if va, ok := l.Addr().(*vsock.Addr); ok {
		a = &Addr{CID: va.ContextID, Port: va.Port}
	}
	return &Listener{l: l, addr: a, allow: t.AllowCIDs}
}

// Listener is a vsock listener whose Addr is an [*Addr] ("any:5000") and
// whose Admit applies the allow-cid rule.
type Listener struct {
	l      *vsock.Listener
	addr   *Addr
	allow  []uint32
	closed atomic.Bool
}

var (
	_ net.Listener  = (*Listener)(nil)
	_ core.Admitter = (*Listener)(nil)
)

var errNoListener = errors.New("vsock: this Listener was not made by Transport.Listen")

// Addr returns the address listened on.
func (l *Listener) Addr() net.Addr {
	if l == nil || l.addr == nil {
		return nil
	}
	return l.addr
}

// Close stops listening.
func (l *Listener) Close() error {
	if l == nil || l.l == nil {
		return errNoListener
	}
	l.closed.Store(true)
	return l.l.Close()
}

// Admit refuses a peer whose CID is not in allow-cid.
func (l *Listener) Admit(c net.Conn) error {
	if l == nil || len(l.allow) == 0 {
		return nil
	}
	p, ok := c.RemoteAddr().(*PeerAddr)
	if !ok {
		return fmt.Errorf("peer address %v is not a vsock address; allow-cid cannot admit it", c.RemoteAddr())
	}
	if slices.Contains(l.allow, p.CID) {
		return nil
	}
	names := make([]string, len(l.allow))
	for i, cid := range l.allow {
		names[i] = strconv.FormatUint(uint64(cid), 10)
	}
	return fmt.Errorf("CID %d is not allowed (allow-cid %s)", p.CID, strings.Join(names, ","))
}

// Accept waits for the next connection; its RemoteAddr is a [*PeerAddr].
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.l == nil {
		return nil, errNoListener
	}
	c, err := l.l.Accept()
	if err != nil {
		if l.closed.Load() && !errors.Is(err, net.ErrClosed) {
			// The library says EBADF when Accept starts after Close.
			return nil, &net.OpError{Op: "accept", Net: Name, Addr: l.addr, Err: net.ErrClosed}
		}
		return nil, err
	}
	return newConn(c.(*vsock.Conn)), nil
}

// newConn wraps a vsock socket so that its RemoteAddr is a [*PeerAddr].
func newConn(vc *vsock.Conn) net.Conn {
	peer := &PeerAddr{}
	if ra, ok := vc.RemoteAddr().(*vsock.Addr); ok {
		peer.CID, peer.Port = ra.ContextID, ra.Port
	}
	return sockconn.New(vc, nil, peer)
}

// PeerAddr is the remote address of an accepted vsock connection. Its
// String is the library's "vm(3):PORT"; its Identity is the CID alone,
// "vm(3)" or "host(2)", which is who the peer is.
type PeerAddr struct {
	CID, Port uint32
}

// Network returns "vsock".
func (a *PeerAddr) Network() string { return Name }

// String returns "vm(3):PORT", "host(2):PORT", and so on.
func (a *PeerAddr) String() string {
	return (&vsock.Addr{ContextID: a.CID, Port: a.Port}).String()
}

// Identity returns the CID as "vm(3)", "host(2)", "local(1)".
func (a *PeerAddr) Identity() string {
	s := a.String()
	return s[:strings.LastIndexByte(s, ':')]
}

// Dial connects to address, honouring ctx's cancellation and deadline.
func (Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if a.CID == Any {
		return nil, fmt.Errorf("vsock: cannot dial %q: give the peer's CID (host, or the guest's number such as 3)", address)
	}
	if err := supported(); err != nil {
		return nil, err
	}
	c, err := vsock.DialContext(ctx, a.CID, a.Port, nil)
	if err != nil {
		return nil, explain("dial", a, err)
	}
	return newConn(c), nil
}

// ErrNoDevice is matched by errors from a machine without vsock support.
var ErrNoDevice = errors.New("no vsock support on this machine")

// explain wraps the errors a user meets with what to do about them.
func explain(op string, a *Addr, err error) error {
	hint := ""
	switch {
	case errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.ENODEV), errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED):
		err = fmt.Errorf("%w: %w", ErrNoDevice, err)
		hint = "a guest needs a virtio vsock device and the vmw_vsock_virtio_transport module; a host needs the vhost_vsock module (modprobe vhost_vsock) and a guest started with one (QEMU: -device vhost-vsock-pci,guest-cid=3)"
	case op == "dial" && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)):
		hint = fmt.Sprintf("nobody is listening on vsock port %d at CID %s: start a listener on any:%d there", a.Port, cidName(a.CID), a.Port)
	case op == "dial" && errors.Is(err, syscall.ENETUNREACH), op == "dial" && errors.Is(err, syscall.EHOSTUNREACH):
		hint = fmt.Sprintf("CID %s cannot be reached from here: from a guest dial host:PORT, from a host the guest's CID", cidName(a.CID))
	case op == "listen" && (errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPERM)):
		hint = fmt.Sprintf("this machine cannot bind CID %s: listen on any:%d instead", cidName(a.CID), a.Port)
	case op == "listen" && errors.Is(err, syscall.EADDRINUSE):
		hint = fmt.Sprintf("vsock port %d is taken: stop the program using it or choose another port", a.Port)
	}
	if hint == "" {
		return err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Err = fmt.Errorf("%w (%s)", oe.Err, hint)
		return err
	}
	return &net.OpError{Op: op, Net: Name, Addr: a, Err: fmt.Errorf("%w (%s)", err, hint)}
}
