// Package tcp is the TCP transport, for processes on different machines.
//
// Addresses are "host:port" ("127.0.0.1:7000", "[::1]:7000",
// "localhost:7000"). A listen address with no host (":7000") listens on
// loopback only; write "0.0.0.0:7000" or "[::]:7000" to listen beyond this
// machine.
//
// Importing this package registers [Transport] in [core.Transports] as "tcp".
package tcp

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/tetherkit/tether/core"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "tcp"

// Transport is the TCP transport. The zero value is ready to use.
type Transport struct{}

var _ core.Transport = Transport{}

func init() { core.Transports.Register(Transport{}) }

// Name returns "tcp".
func (Transport) Name() string { return Name }

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
func (Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if a.Host == "" {
		a.Host = "127.0.0.1"
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", a.String())
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

// IsLoopback reports whether a listener address is reachable only from this
// machine.
func IsLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
