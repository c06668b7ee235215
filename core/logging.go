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

type encryptedKey struct{}

// WithEncrypted returns a context telling the transport underneath a
// wrapping one that the wrapper encrypts what it carries (the tls
// transport passes it to TCP), so the inner one need not warn that its
// traffic is readable.
func WithEncrypted(ctx context.Context) context.Context {
	return context.WithValue(ctx, encryptedKey{}, true)
}

// IsEncrypted reports whether ctx came through [WithEncrypted].
func IsEncrypted(ctx context.Context) bool {
	v, _ := ctx.Value(encryptedKey{}).(bool)
	return v
}
