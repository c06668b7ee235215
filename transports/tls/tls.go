// Package tls is the TLS transport: TCP (or any inner transport) with
// crypto/tls on top, so a hub can listen beyond loopback with encryption and,
// optionally, client certificates required and verified.
//
// It is written as a plug-in on tether's public API only, the way a user
// would write a transport of their own: it wraps another core.Transport.
// Addresses are the inner transport's ("127.0.0.1:7443"); the endpoint form
// is "tls://127.0.0.1:7443". Under TLS a peer's identity is its
// certificate's subject ("cn=alice").
//
// Importing this package registers a Transport with no certificates in
// core.Transports as "tls"; a program (or the tether command, through its
// --tls-* flags) uses a configured value: see [Files].
package tls

import (
	"context"
	ctls "crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/tcp"
)

// Name is the transport's registry name and endpoint scheme.
const Name = "tls"

// Transport is TLS over an inner transport.
type Transport struct {
	// Inner carries the bytes; nil means TCP.
	Inner core.Transport
	// Server is the configuration for Listen; it needs a certificate.
	Server *ctls.Config
	// Client is the configuration for Dial; nil means the system's roots
	// and the address's host as the server name.
	Client *ctls.Config
}

var _ core.Transport = Transport{}

func init() { core.Transports.Register(Transport{}) }

// Name returns "tls".
func (Transport) Name() string { return Name }

func (t Transport) inner() core.Transport {
	if t.Inner == nil {
		return tcp.Transport{}
	}
	return t.Inner
}

// ParseAddr checks an address of the inner transport.
func (t Transport) ParseAddr(address string) (net.Addr, error) { return t.inner().ParseAddr(address) }

// Listen listens on the inner transport and speaks TLS on every connection
// it accepts. The handshake runs on the connection's first use (the hub runs
// it under its handshake timeout).
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	if t.Server == nil || (len(t.Server.Certificates) == 0 && t.Server.GetCertificate == nil) {
		return nil, errors.New("tls: no server certificate: give --tls-cert and --tls-key (or set Transport.Server)")
	}
	l, err := t.inner().Listen(ctx, address)
	if err != nil {
		return nil, err
	}
	return ctls.NewListener(l, t.Server), nil
}

// Dial connects over the inner transport and completes the TLS handshake
// within ctx.
func (t Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	c, err := t.inner().Dial(ctx, address)
	if err != nil {
		return nil, err
	}
	cfg := t.Client
	if cfg == nil {
		cfg = &ctls.Config{}
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(address); err == nil {
			cfg.ServerName = host
		}
	}
	tc := ctls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls: handshake with %s: %w", address, err)
	}
	return tc, nil
}

// Files names the PEM files of a TLS set-up, as the command line's flags do.
type Files struct {
	Cert, Key string // this side's certificate and key
	CA        string // certificates to trust for the other side; "" means the system's
	// RequireClientCert makes a server demand and verify a client
	// certificate signed by CA.
	RequireClientCert bool
	// ServerName overrides the name a client checks the server's
	// certificate against (default: the host of the address dialed).
	ServerName string
}

// ServerConfig loads the files for a listening side.
func (f Files) ServerConfig() (*ctls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("tls: a server needs --tls-cert and --tls-key")
	}
	cert, err := ctls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: loading --tls-cert %s and --tls-key %s: %w", f.Cert, f.Key, err)
	}
	cfg := &ctls.Config{Certificates: []ctls.Certificate{cert}, MinVersion: ctls.VersionTLS12}
	if f.RequireClientCert {
		if f.CA == "" {
			return nil, errors.New("tls: --tls-client-auth needs --tls-ca, the CA that signs client certificates")
		}
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = ctls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig loads the files for a dialing side.
func (f Files) ClientConfig() (*ctls.Config, error) {
	cfg := &ctls.Config{MinVersion: ctls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" || f.Key != "" {
		cert, err := ctls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls: loading --tls-cert %s and --tls-key %s: %w", f.Cert, f.Key, err)
		}
		cfg.Certificates = []ctls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: reading --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls: --tls-ca %s holds no PEM certificate", file)
	}
	return pool, nil
}
