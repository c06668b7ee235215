// Package tcp is the TCP transport, for processes on different machines.
//
// Addresses are "host:port" ("127.0.0.1:7000", "[::1]:7000",
// "localhost:7000"). A listen address with no host (":7000") listens on
// loopback only; write "0.0.0.0:7000" or "[::]:7000" to listen beyond this
// machine, and the listener then warns that the traffic is not encrypted
// (unless a layer above encrypts it: see [core.WithEncrypted]). The option
// allow-net admits only peers from the address ranges named.
//
// Importing this package registers [Transport] in [core.Transports] as "tcp".
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/tetherkit/tether/core"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "tcp"

// Transport is the TCP transport. The zero value is ready to use.
type Transport struct {
	// AllowNets, when set, admits only peers whose address is in one of
	// these ranges.
	AllowNets []*net.IPNet
}

var (
	_ core.Transport    = Transport{}
	_ core.Configurable = Transport{}
	_ core.BareMatcher  = Transport{}
	_ core.Ephemeral    = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "tcp".
func (Transport) Name() string { return Name }

// Options lists allow-net.
func (Transport) Options() []core.Option {
	return []core.Option{allowNetOption}
}

// allowNetOption is the allow-net option.
var allowNetOption = core.Option{Name: "allow-net", Use: core.ForListen, Multi: true,
	Usage: "admit only peers from these address ranges (comma-separated: 127.0.0.0/8, ::1, 10.0.0.0/24)"}

// Configure returns a copy of t with the options set.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	if vals, ok := opts["allow-net"]; ok {
		nets, err := parseNets(vals)
		if err != nil {
			return nil, &core.OptionError{Transport: Name, Option: "allow-net", Value: strings.Join(vals, ","), Err: err}
		}
		t.AllowNets = append(slices.Clone(t.AllowNets), nets...)
	}
	return t, nil
}

// parseNets reads comma-separated CIDR ranges or single addresses.
func parseNets(vals []string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, v := range vals {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			if !strings.Contains(part, "/") {
				if ip := net.ParseIP(part); ip != nil {
					bits := 128
					if ip.To4() != nil {
						bits = 32
					}
					part = fmt.Sprintf("%s/%d", part, bits)
				}
			}
			_, n, err := net.ParseCIDR(part)
			if err != nil {
				return nil, errors.New("want address ranges such as 127.0.0.0/8 or 10.1.2.3")
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// MatchBare is certain of "host:port" with a numeric port and no '/' in
// the host.
func (Transport) MatchBare(address string) core.Match {
	if strings.Contains(address, "/") {
		return core.NoMatch
	}
	if _, err := parse(address); err == nil {
		return core.Certain
	}
	return core.NoMatch
}

// EphemeralAddress returns a loopback address with a port the kernel picks.
func (Transport) EphemeralAddress() (string, func(), error) {
	return "127.0.0.1:0", func() {}, nil
}

// Addr is a TCP address as written: a host (name or IP literal, possibly
// empty) and a port.
type Addr struct {
	Host string
	Port uint16
}

// Network returns "tcp".
func (a *Addr) Network() string { return Name }

// String returns "host:port", bracketing IPv6 literals.
func (a *Addr) String() string { return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port))) }

// ParseAddr checks "host:port". The port must be a number from 0 to 65535.
func (Transport) ParseAddr(address string) (net.Addr, error) {
	return parse(address)
}

func parse(address string) (*Addr, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("tcp: address %q: want host:port, such as 127.0.0.1:7000: %w", address, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("tcp: address %q: port %q is not a number from 0 to 65535", address, port)
	}
	return &Addr{Host: host, Port: uint16(p)}, nil
}

// Listen listens on address; an empty host means loopback.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if a.Host == "" {
		a.Host = "127.0.0.1"
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", a.String())
	if err != nil {
		return nil, err
	}
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !core.IsEncrypted(ctx) {
		core.TransportLogger(ctx, Name).Warn("listening beyond this machine without encryption; anyone who can reach the port can join (use the tls transport, or allow-net)", "addr", ta.String())
	}
	return &Listener{l: l, allow: t.AllowNets}, nil
}

// Wrap adopts a listener made elsewhere (a socket systemd passed), with the
// transport's admission rule.
func (t Transport) Wrap(l net.Listener) *Listener {
	return &Listener{l: l, allow: t.AllowNets}
}

// Listener is a TCP listener whose Admit applies the allow-net rule.
// Accepted connections are plain *net.TCPConn values.
type Listener struct {
	l     net.Listener
	allow []*net.IPNet
}

var (
	_ net.Listener  = (*Listener)(nil)
	_ core.Admitter = (*Listener)(nil)
)

var errNoListener = errors.New("tcp: this Listener was not made by Transport.Listen")

// Accept waits for the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.l == nil {
		return nil, errNoListener
	}
	return l.l.Accept()
}

// Close stops listening.
func (l *Listener) Close() error {
	if l == nil || l.l == nil {
		return errNoListener
	}
	return l.l.Close()
}

// Addr returns the address listened on, with the port the kernel chose.
func (l *Listener) Addr() net.Addr {
	if l == nil || l.l == nil {
		return nil
	}
	return l.l.Addr()
}

// Admit refuses a peer whose address is outside the allow-net ranges.
func (l *Listener) Admit(c net.Conn) error {
	if l == nil || len(l.allow) == 0 {
		return nil
	}
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("peer address %v is not a TCP address; allow-net cannot admit it", c.RemoteAddr())
	}
	for _, n := range l.allow {
		if n.Contains(ta.IP) {
			return nil
		}
	}
	ranges := make([]string, len(l.allow))
	for i, n := range l.allow {
		ranges[i] = n.String()
	}
	return fmt.Errorf("address %s is not allowed (allow-net %s)", ta.IP, strings.Join(ranges, ","))
}

// Dial connects to address; an empty host means loopback.
func (Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if a.Host == "" {
		a.Host = "127.0.0.1"
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", a.String())
}
