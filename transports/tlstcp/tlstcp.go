// Package tlstcp is the TLS transport: TCP (or any inner transport) with
// crypto/tls on top, so a hub can listen beyond loopback with encryption and,
// optionally, client certificates required and verified. Its registry name
// and endpoint scheme are "tls" ("tls://127.0.0.1:7443"); the package is
// named so that it does not shadow crypto/tls.
//
// It is written as a plug-in on tether's public API only, the way a user
// would write a transport of their own: it wraps another core.Transport,
// runs its handshake through [core.Handshaker], gives the peer's identity
// (its certificate's subject, "cn=alice") through [core.Identifier], and
// passes its inner transport's admission rules on ([core.Admitter]).
//
// Options (see [Transport.Options]): tls-cert, tls-key, tls-ca,
// tls-client-auth, tls-server-name, and the inner transport's own (allow-net
// for TCP). Importing this package registers a Transport with no
// certificates in core.Transports as "tls".
package tlstcp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

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
	Server *tls.Config
	// Client is the configuration for Dial; nil means the system's roots
	// and the address's host as the server name.
	Client *tls.Config
	// Files are the PEM files the options named; Configure builds Server
	// and Client from them.
	Files Files
}

var (
	_ core.Transport    = Transport{}
	_ core.Configurable = Transport{}
)

func init() { core.Transports.Register(Transport{}) }

// Name returns "tls".
func (Transport) Name() string { return Name }

func (t Transport) inner() core.Transport {
	if t.Inner == nil {
		return tcp.Transport{}
	}
	return t.Inner
}

var ownOptions = []core.Option{
	{Name: "tls-cert", Use: core.ForListen | core.ForDial, Usage: "tls: this side's certificate (PEM file)"},
	{Name: "tls-key", Use: core.ForListen | core.ForDial, Usage: "tls: this side's private key (PEM file)"},
	{Name: "tls-ca", Use: core.ForListen | core.ForDial, Usage: "tls: CA certificates to trust for the other side (PEM file; default: the system's)"},
	{Name: "tls-client-auth", Use: core.ForListen, Bool: true, Usage: "tls: require a client certificate signed by tls-ca"},
	{Name: "tls-server-name", Use: core.ForDial, Usage: "tls: name to check the server's certificate against (default: the address's host)"},
}

// Options lists the TLS options and the inner transport's.
func (t Transport) Options() []core.Option {
	return append(append([]core.Option(nil), ownOptions...), core.TransportOptions(t.inner())...)
}

// Configure returns a copy of t with the options set: the TLS ones load
// their files at once (so a missing file is reported before any work), the
// others go to the inner transport.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	inner, own := url.Values{}, false
	for key, vals := range opts {
		switch key {
		case "tls-cert":
			t.Files.Cert, own = vals[0], true
		case "tls-key":
			t.Files.Key, own = vals[0], true
		case "tls-ca":
			t.Files.CA, own = vals[0], true
		case "tls-server-name":
			t.Files.ServerName, own = vals[0], true
		case "tls-client-auth":
			on, err := strconv.ParseBool(vals[0])
			if err != nil {
				return nil, &core.OptionError{Transport: Name, Option: key, Value: vals[0], Err: errors.New("want true or false")}
			}
			t.Files.RequireClientCert, own = on, true
		default:
			inner[key] = vals
		}
	}
	if len(inner) > 0 {
		in, err := core.Configure(t.inner(), inner)
		if err != nil {
			return nil, err
		}
		t.Inner = in
	}
	if !own {
		return t, nil
	}
	var err error
	if t.Client, err = t.Files.ClientConfig(); err != nil {
		return nil, err
	}
	if t.Files.Cert != "" || t.Files.RequireClientCert {
		if t.Server, err = t.Files.ServerConfig(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ParseAddr checks an address of the inner transport.
func (t Transport) ParseAddr(address string) (net.Addr, error) { return t.inner().ParseAddr(address) }

// Listen listens on the inner transport and speaks TLS on every connection
// it accepts. The handshake runs when the hub asks for it
// ([core.Handshaker]), under the hub's handshake timeout.
func (t Transport) Listen(ctx context.Context, address string) (net.Listener, error) {
	if t.Server == nil || (len(t.Server.Certificates) == 0 && t.Server.GetCertificate == nil) {
		return nil, errors.New("tls: no server certificate: set the tls-cert and tls-key options (or Transport.Server)")
	}
	l, err := t.inner().Listen(core.WithEncrypted(ctx), address)
	if err != nil {
		return nil, err
	}
	return &Listener{inner: l, config: t.Server}, nil
}

// Listener accepts TLS connections over an inner listener, and passes the
// inner transport's admission rules on. Its zero value answers with errors.
type Listener struct {
	inner  net.Listener
	config *tls.Config
}

var (
	_ net.Listener  = (*Listener)(nil)
	_ core.Admitter = (*Listener)(nil)
)

var errNoListener = errors.New("tls: this Listener was not made by Transport.Listen")

// Accept waits for the next connection; its handshake has not run yet.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.inner == nil {
		return nil, errNoListener
	}
	c, err := l.inner.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{tc: tls.Server(c, l.config)}, nil
}

// Close closes the inner listener.
func (l *Listener) Close() error {
	if l == nil || l.inner == nil {
		return errNoListener
	}
	return l.inner.Close()
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr {
	if l == nil || l.inner == nil {
		return nil
	}
	return l.inner.Addr()
}

// Admit applies the inner listener's rules (allow-net) to the connection
// underneath TLS.
func (l *Listener) Admit(c net.Conn) error {
	if l == nil {
		return nil
	}
	a, ok := l.inner.(core.Admitter)
	if !ok {
		return nil
	}
	if tc, ok := c.(*Conn); ok && tc.tc != nil {
		return a.Admit(tc.tc.NetConn())
	}
	return a.Admit(c)
}

// Conn is a TLS connection. Its Identity is its peer's certificate subject
// ("cn=alice"), or the inner connection's identity when the peer showed no
// certificate; its HandshakeContext is crypto/tls's. Its zero value answers
// with errors.
type Conn struct {
	tc *tls.Conn
}

var (
	_ net.Conn        = (*Conn)(nil)
	_ core.Handshaker = (*Conn)(nil)
	_ core.Identifier = (*Conn)(nil)
)

var errNoConn = errors.New("tls: this Conn was not made by Transport.Dial or a Listener's Accept")

func (c *Conn) ok() bool { return c != nil && c.tc != nil }

// Read reads decrypted bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if !c.ok() {
		return 0, errNoConn
	}
	return c.tc.Read(p)
}

// Write encrypts and writes p.
func (c *Conn) Write(p []byte) (int, error) {
	if !c.ok() {
		return 0, errNoConn
	}
	return c.tc.Write(p)
}

// Close closes the connection, telling the peer first.
func (c *Conn) Close() error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.Close()
}

// CloseWrite tells the peer no more will be written, and shuts down the
// inner connection's sending side.
func (c *Conn) CloseWrite() error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.CloseWrite()
}

// LocalAddr returns the inner connection's local address.
func (c *Conn) LocalAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.tc.LocalAddr()
}

// RemoteAddr returns the inner connection's remote address.
func (c *Conn) RemoteAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.tc.RemoteAddr()
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.SetDeadline(t)
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.SetReadDeadline(t)
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.SetWriteDeadline(t)
}

// HandshakeContext runs the TLS handshake within ctx.
func (c *Conn) HandshakeContext(ctx context.Context) error {
	if !c.ok() {
		return errNoConn
	}
	return c.tc.HandshakeContext(ctx)
}

// ConnectionState returns the TLS state: version, cipher, certificates.
func (c *Conn) ConnectionState() tls.ConnectionState {
	if !c.ok() {
		return tls.ConnectionState{}
	}
	return c.tc.ConnectionState()
}

// Identity names the peer by its certificate's common name.
func (c *Conn) Identity() string {
	if !c.ok() {
		return ""
	}
	if st := c.tc.ConnectionState(); len(st.PeerCertificates) > 0 {
		return "cn=" + st.PeerCertificates[0].Subject.CommonName
	}
	return core.Identity(c.tc.NetConn())
}

// Dial connects over the inner transport and completes the TLS handshake
// within ctx.
func (t Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	c, err := t.inner().Dial(core.WithEncrypted(ctx), address)
	if err != nil {
		return nil, err
	}
	cfg := t.Client
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(address); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls: handshake with %s: %w", address, err)
	}
	return &Conn{tc: tc}, nil
}

// Files names the PEM files of a TLS set-up.
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

func optionErr(option, value string, err error) error {
	return &core.OptionError{Transport: Name, Option: option, Value: value, Err: err}
}

// ServerConfig loads the files for a listening side.
func (f Files) ServerConfig() (*tls.Config, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, optionErr("tls-cert", f.Cert, errors.New("a server needs both tls-cert and tls-key"))
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, optionErr("tls-cert", f.Cert, fmt.Errorf("loading it with tls-key %s: %w", f.Key, err))
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.RequireClientCert {
		if f.CA == "" {
			return nil, optionErr("tls-client-auth", "true", errors.New("it needs tls-ca, the CA that signs client certificates"))
		}
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig loads the files for a dialing side.
func (f Files) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		pool, err := loadPool(f.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.Cert != "" || f.Key != "" {
		if f.Cert == "" || f.Key == "" {
			return nil, optionErr("tls-cert", f.Cert, errors.New("tls-cert and tls-key go together"))
		}
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, optionErr("tls-cert", f.Cert, fmt.Errorf("loading it with tls-key %s: %w", f.Key, err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, optionErr("tls-ca", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, optionErr("tls-ca", file, errors.New("the file holds no PEM certificate"))
	}
	return pool, nil
}
