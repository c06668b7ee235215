package core

import (
	"context"

	"github.com/hashicorp/go-hclog"
)

type loggerKey struct{}

// WithLogger returns a context that carries logger to the transports: their
// Listen and Dial log under the sub-logger "transport.NAME" (see
// [TransportLogger]).
func WithLogger(ctx context.Context, logger hclog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, logger)
}

// TransportLogger returns the logger ctx carries, named
// "transport.<name>", or a logger that discards everything: a library logs
// nothing unless asked to.
func TransportLogger(ctx context.Context, name string) hclog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(hclog.Logger); ok && l != nil {
		return l.Named("transport." + name)
	}
	return hclog.NewNullLogger()
}
