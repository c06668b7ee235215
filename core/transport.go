package core

import (
	"context"
	"net"
)

// Transport moves bytes between processes. Implementations produce plain
// [net.Listener] and [net.Conn] values, so deadlines, half-close and the
// standard library's tools work unchanged; optional abilities are optional
// interfaces found by type assertion.
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
