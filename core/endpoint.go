package core

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// Endpoint is a transport name and an address in that transport's own form.
// Its text form is "scheme://address", for example "unix:///run/chat.sock",
// "unix://@abstract" or "tcp://127.0.0.1:7000". An endpoint without a scheme
// has an empty Transport and leaves the choice to the caller.
type Endpoint struct {
	Transport string // registry name, or "" when the text had no scheme
	Address   string // the transport's own address form
}

// String returns the endpoint's text form, which [ParseEndpoint] reads back.
func (e Endpoint) String() string {
	if e.Transport == "" {
		return e.Address
	}
	return e.Transport + "://" + e.Address
}

// ParseEndpoint splits s into a scheme and an address. A scheme is a letter
// followed by letters, digits, '+', '-' or '.', then "://". Text without such
// a prefix is a bare address. Only the split is checked here; the transport
// checks the address (see [Resolve]).
func ParseEndpoint(s string) (Endpoint, error) {
	if i := strings.Index(s, "://"); i >= 0 && isScheme(s[:i]) {
		ep := Endpoint{Transport: strings.ToLower(s[:i]), Address: s[i+3:]}
		if ep.Address == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q has no address after %q", s, s[:i+3])
		}
		return ep, nil
	}
	if s == "" {
		return Endpoint{}, fmt.Errorf("empty address: give one such as /tmp/chat.sock or tcp://127.0.0.1:7000")
	}
	return Endpoint{Address: s}, nil
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// Target is a transport together with an address it has checked: what
// [Resolve] returns, ready to listen on or dial.
type Target struct {
	Transport Transport
	Address   string   // the transport's own address form
	Addr      net.Addr // the typed address, from Transport.ParseAddr
}

// String returns the target as an endpoint, "scheme://address".
func (t Target) String() string {
	return Endpoint{Transport: t.Transport.Name(), Address: t.Address}.String()
}

// Listen listens on the target.
func (t Target) Listen(ctx context.Context) (net.Listener, error) {
	return t.Transport.Listen(ctx, t.Address)
}

// Dial connects to the target.
func (t Target) Dial(ctx context.Context) (net.Conn, error) {
	return t.Transport.Dial(ctx, t.Address)
}

// Resolve parses s as an endpoint, picks its transport from reg (the scheme,
// or fallback when s has none) and has the transport check the address.
// A scheme that disagrees with a non-empty fallback is an error, so that
// "--transport tcp --addr unix:///x" is caught rather than guessed at.
func Resolve(reg *Registry[Transport], s, fallback string) (Target, error) {
	ep, err := ParseEndpoint(s)
	if err != nil {
		return Target{}, err
	}
	name := ep.Transport
	if name == "" {
		name = fallback
	} else if fallback != "" && fallback != name {
		return Target{}, fmt.Errorf("address %q names transport %q but %q was asked for: drop one of the two", s, name, fallback)
	}
	if name == "" {
		return Target{}, fmt.Errorf("address %q names no transport: write it as scheme://address (schemes: %s)", s, strings.Join(reg.Names(), ", "))
	}
	t, err := reg.Lookup(name)
	if err != nil {
		return Target{}, err
	}
	addr, err := t.ParseAddr(ep.Address)
	if err != nil {
		return Target{}, err
	}
	return Target{Transport: t, Address: ep.Address, Addr: addr}, nil
}
