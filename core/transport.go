package core

import (
	"context"
	"net"
)

// Transport moves bytes between processes. Implementations produce plain
// [net.Listener] and [net.Conn] values, so deadlines, half-close and the
// standard library's tools work unchanged; optional abilities are optional
// interfaces found by type assertion (this file, conn.go and option.go).
//
// A Transport must be safe for concurrent use.
type Transport interface {
	// Name is the registry name and the endpoint scheme, such as "tcp".
	Name() string
	// ParseAddr checks an address in the transport's own form (without a
	// scheme) and returns its typed value. It does no I/O.
	ParseAddr(address string) (net.Addr, error)
	// Listen starts listening on address. The caller closes the listener.
	Listen(ctx context.Context, address string) (net.Listener, error)
	// Dial connects to address, honouring ctx's cancellation and deadline
	// while connecting. The caller closes the connection.
	Dial(ctx context.Context, address string) (net.Conn, error)
}

// DefaultAddresser is an optional interface of a [Transport] that has an
// address to use when none is given: a per-user socket path, a well-known
// port. [Resolver.Resolve] uses it for an empty address.
type DefaultAddresser interface {
	DefaultAddress() string
}

// Match says how well an address written without a scheme fits a
// transport's own form; see [BareMatcher].
type Match int

const (
	// NoMatch: not this transport's form.
	NoMatch Match = iota
	// Fallback: possibly this transport's, if no transport is certain (a
	// unix socket path can be almost any text).
	Fallback
	// Certain: unmistakably this transport's form (host:port with a numeric
	// port; a text with a '/').
	Certain
)

// BareMatcher is an optional interface of a [Transport] whose addresses may
// be written without a scheme. [Resolver.Resolve] gives a bare address to
// the one transport that is [Certain] of it, else to the one that takes it
// as a [Fallback]; two claimants make it ambiguous, and the user must write
// the scheme.
type BareMatcher interface {
	MatchBare(address string) Match
}

// EndpointParser is an optional interface of a [Transport] whose addresses
// have stricter rules when written after "scheme://" than when bare: the unix
// transport refuses "unix://tmp/x.sock", which looks like "/tmp/x.sock" with
// a slash lost, and asks for "unix:///tmp/x.sock" or "unix://./tmp/x.sock".
// Without it, ParseAddr checks both forms.
type EndpointParser interface {
	ParseEndpointAddr(address string) (net.Addr, error)
}

// Ephemeral is an optional interface of a [Transport] that can give a fresh
// address only this machine reaches, for a listener that this process's own
// dialers meet (tests, benchmarks): a path in a new temporary directory, a
// loopback port chosen by the kernel. release frees what the address holds;
// dial the listener's Addr().String(), which names the port chosen.
type Ephemeral interface {
	EphemeralAddress() (address string, release func(), err error)
}

// Finding is one line of what a machine supports for a transport: a topic
// ("device", "local CID", "path limit") and what was found, with what to do
// when something is missing.
type Finding struct {
	Topic string
	Text  string
}

// Diagnoser is an optional interface of a [Transport]: what this machine
// supports for it, found by reading files and asking the kernel, without
// dialing anything. The tether command's "doctor" prints it.
type Diagnoser interface {
	Diagnose(ctx context.Context) []Finding
}
