package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// The endpoint grammar, the one way tether writes "which transport, which
// address, which options" as text:
//
//	endpoint = scheme "://" address [ "?" query ]
//	         | bare
//	scheme   = letter *( letter | digit | "+" | "-" | "." )   (case-insensitive)
//
//   - In the scheme form the address is percent-decoded, so "%3F" is a '?'
//     and "%25" a '%' (a TCP zone is written "[fe80::1%25eth0]:7000"), and
//     the query holds options as key=value pairs joined by '&': "codec" (the
//     codec of a listener or dialer) and the options of the endpoint's
//     transport ([Configurable]). Any other key is refused.
//   - A bare address is taken exactly as written, with no decoding and no
//     query; its transport is named separately, or found from its form
//     ([BareMatcher]: "host:port" is tcp, a path is unix).
//   - An empty address, bare or after "scheme://", means the transport's
//     default ([DefaultAddresser]); a transport without one gets "" to
//     check ("stdio://" needs no address).

// CodecKey is the query key that names a codec: "tcp://127.0.0.1:7000?codec=length".
const CodecKey = "codec"

// RoomKey is the query key that names a listener's room:
// "unix:///run/vms.sock?room=vms".
const RoomKey = "room"

// Endpoint is an endpoint's text split into its parts. Its String form is
// the text [ParseEndpoint] reads back.
type Endpoint struct {
	Transport string     // registry name (lower case), or "" for a bare address
	Address   string     // the transport's own address form, decoded
	Options   url.Values // the query's options; nil when there is none
}

// String returns the endpoint's text form: "scheme://address?options", with
// '%' and '?' in the address escaped, or the bare address.
func (e Endpoint) String() string {
	if e.Transport == "" {
		return e.Address
	}
	s := e.Transport + "://" + escapeAddress(e.Address)
	if len(e.Options) > 0 {
		s += "?" + e.Options.Encode()
	}
	return s
}

func escapeAddress(a string) string {
	if !strings.ContainsAny(a, "%?") {
		return a
	}
	return strings.NewReplacer("%", "%25", "?", "%3F").Replace(a)
}

// ParseEndpoint splits s into scheme, address and options (see the grammar
// above). Only the split is checked here; [Resolver.Resolve] checks the
// scheme, the options and the address.
func ParseEndpoint(s string) (Endpoint, error) {
	i := strings.Index(s, "://")
	if i < 0 || !isScheme(s[:i]) {
		if s == "" {
			return Endpoint{}, errors.New("empty address: give one such as /tmp/chat.sock or tcp://127.0.0.1:7000")
		}
		return Endpoint{Address: s}, nil
	}
	ep := Endpoint{Transport: strings.ToLower(s[:i])}
	rest := s[i+3:]
	raw, query, hasQuery := strings.Cut(rest, "?")
	addr, err := url.PathUnescape(raw)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: bad escape in the address (write a literal %% as %%25): %w", s, err)
	}
	ep.Address = addr
	if hasQuery && query != "" {
		opts, err := url.ParseQuery(query)
		if err != nil {
			return Endpoint{}, fmt.Errorf("endpoint %q: bad options after '?' (want key=value&key=value): %w", s, err)
		}
		ep.Options = opts
	}
	return ep, nil
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
// [Resolver.Resolve] returns, ready to listen on or dial.
type Target struct {
	Transport Transport  // configured with the endpoint's options
	Address   string     // the transport's own address form
	Addr      net.Addr   // the typed address, from the transport's parser
	Codec     string     // the codec the query named ("?codec=length"), or ""
	Room      string     // the room the query named ("?room=vms"), or ""
	Options   url.Values // the transport options that were applied
}

// String returns the target as an endpoint, "scheme://address", without
// its options.
func (t Target) String() string {
	if t.Transport == nil {
		return t.Address
	}
	return Endpoint{Transport: t.Transport.Name(), Address: t.Address}.String()
}

var errNoTarget = errors.New("tether: an empty Target: make one with Resolve")

// Listen listens on the target.
func (t Target) Listen(ctx context.Context) (net.Listener, error) {
	if t.Transport == nil {
		return nil, errNoTarget
	}
	return t.Transport.Listen(ctx, t.Address)
}

// Dial connects to the target.
func (t Target) Dial(ctx context.Context) (net.Conn, error) {
	if t.Transport == nil {
		return nil, errNoTarget
	}
	return t.Transport.Dial(ctx, t.Address)
}

// Resolver turns endpoint text into a [Target]. The zero value uses
// [Transports] and finds a bare address's transport from its form.
type Resolver struct {
	// Transports holds the transports by name; nil means [Transports].
	Transports *Registry[Transport]
	// Transport names the transport of a bare or empty address; "" means
	// the transport the address's form names ([BareMatcher]), or for an
	// empty address the registry's default. An endpoint whose scheme names
	// another transport is refused rather than guessed at.
	Transport string
	// Options are transport options for every target, under those of the
	// endpoint's own query. Unlike the query's, an option the target's
	// transport does not declare is skipped here, not refused.
	Options url.Values
}

// Resolve parses s, picks its transport, applies the options and has the
// transport check the address.
func (r *Resolver) Resolve(s string) (Target, error) {
	reg := r.Transports
	if reg == nil {
		reg = Transports
	}
	var ep Endpoint
	if s == "" {
		name := r.Transport
		if name == "" {
			if name = reg.DefaultName(); name == "" {
				return Target{}, fmt.Errorf("no address given and no default transport: give an address such as scheme://address (schemes: %s)", strings.Join(reg.Names(), ", "))
			}
		}
		t, err := reg.Lookup(name)
		if err != nil {
			return Target{}, err
		}
		d, ok := t.(DefaultAddresser)
		if !ok {
			return Target{}, fmt.Errorf("transport %q has no default address: give one", name)
		}
		ep = Endpoint{Transport: name, Address: d.DefaultAddress()}
		s = ep.String()
	} else {
		var err error
		if ep, err = ParseEndpoint(s); err != nil {
			return Target{}, err
		}
	}
	name := ep.Transport
	switch {
	case name == "":
		name = r.Transport
	case r.Transport != "" && r.Transport != name:
		return Target{}, fmt.Errorf("address %q names transport %q but %q was asked for: drop one of the two", s, name, r.Transport)
	}
	var t Transport
	var err error
	if name == "" {
		t, err = matchBare(reg, ep.Address)
	} else {
		t, err = reg.Lookup(name)
	}
	if err != nil {
		return Target{}, err
	}
	if ep.Address == "" {
		if d, ok := t.(DefaultAddresser); ok {
			ep.Address = d.DefaultAddress()
		}
	}
	tgt := Target{Address: ep.Address}
	opts := url.Values{}
	declared := TransportOptions(t)
	for _, o := range declared {
		if v, ok := r.Options[o.Name]; ok {
			opts[o.Name] = v
		}
	}
	for key, vals := range ep.Options {
		if key == CodecKey {
			if len(vals) != 1 || vals[0] == "" {
				return Target{}, fmt.Errorf("endpoint %q: give one codec name, such as ?codec=line", s)
			}
			tgt.Codec = vals[0]
			continue
		}
		if key == RoomKey {
			if len(vals) != 1 || vals[0] == "" {
				return Target{}, fmt.Errorf("endpoint %q: give one room name, such as ?room=vms", s)
			}
			tgt.Room = vals[0]
			continue
		}
		if !slices.ContainsFunc(declared, func(o Option) bool { return o.Name == key }) {
			return Target{}, &OptionError{Transport: t.Name(), Option: key, Err: unknownKey(declared)}
		}
		opts[key] = vals
	}
	if len(opts) > 0 {
		if t, err = t.(Configurable).Configure(opts); err != nil {
			return Target{}, err
		}
		tgt.Options = opts
	}
	tgt.Transport = t
	if p, ok := t.(EndpointParser); ok && ep.Transport != "" {
		tgt.Addr, err = p.ParseEndpointAddr(ep.Address)
	} else {
		tgt.Addr, err = t.ParseAddr(ep.Address)
	}
	if err != nil {
		return Target{}, err
	}
	return tgt, nil
}

func unknownKey(declared []Option) error {
	valid := []string{CodecKey, RoomKey}
	for _, o := range declared {
		valid = append(valid, o.Name)
	}
	sort.Strings(valid)
	return fmt.Errorf("unknown option in the endpoint; valid: %s", strings.Join(valid, ", "))
}

func matchBare(reg *Registry[Transport], address string) (Transport, error) {
	var certain, fallback []Transport
	for _, name := range reg.Names() {
		t, _ := reg.Lookup(name)
		m, ok := t.(BareMatcher)
		if !ok {
			continue
		}
		switch m.MatchBare(address) {
		case Certain:
			certain = append(certain, t)
		case Fallback:
			fallback = append(fallback, t)
		}
	}
	for _, set := range [][]Transport{certain, fallback} {
		switch len(set) {
		case 0:
			continue
		case 1:
			return set[0], nil
		}
		names := make([]string, len(set))
		for i, t := range set {
			names[i] = t.Name()
		}
		return nil, fmt.Errorf("address %q could belong to transports %s: write its scheme, such as %s://%s",
			address, strings.Join(names, " or "), names[0], escapeAddress(address))
	}
	return nil, fmt.Errorf("address %q names no transport: write it as scheme://address (schemes: %s)", address, strings.Join(reg.Names(), ", "))
}

// Resolve is [Resolver.Resolve] with the registry reg and the transport
// fallback for bare addresses ("" to find it from the address's form).
func Resolve(reg *Registry[Transport], s, fallback string) (Target, error) {
	r := Resolver{Transports: reg, Transport: fallback}
	return r.Resolve(s)
}
