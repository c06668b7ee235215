package federation

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions describes a NATS server embedded in a hub (the real
// nats-server, github.com/nats-io/nats-server/v2, as a library).
type ServerOptions struct {
	// Listen is the client address, host:port; a missing host is loopback,
	// port 0 a free port (ClientURL says which).
	Listen string
	// Cluster, when set, is the address other embedded servers route to
	// (host:port), and Routes the cluster addresses of the others
	// ("nats-route://host:port"): the servers form one NATS system, so a
	// room outlives any one hub.
	Cluster string
	Routes  []string
	// Name names the server in NATS (default: generated).
	Name string
	// TLS, when set, makes the client port take TLS connections only, with
	// this configuration (ClientURL then says tls://); with ClientAuth
	// tls.RequireAndVerifyClientCert, a hub must show a certificate that
	// ClientCAs trust. The hub's own in-process connection needs none.
	// Routes between clustered servers are not encrypted.
	TLS *tls.Config
	// Logger receives the server's notices and errors.
	Logger hclog.Logger
}

// StartServer starts an embedded NATS server and waits until it takes
// connections.
func StartServer(o ServerOptions) (*server.Server, error) {
	host, port, err := splitHostPort(o.Listen, "nats listen address")
	if err != nil {
		return nil, err
	}
	opts := &server.Options{ServerName: o.Name, Host: host, Port: randomIfZero(port), NoSigs: true, MaxPayload: server.MAX_PAYLOAD_MAX_SIZE}
	if o.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, o.TLS, 5
		opts.TLSVerify = o.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if o.Cluster != "" {
		ch, cp, err := splitHostPort(o.Cluster, "nats cluster address")
		if err != nil {
			return nil, err
		}
		cp = randomIfZero(cp)
		opts.Cluster = server.ClusterOpts{Name: "tether", Host: ch, Port: cp}
		for _, r := range o.Routes {
			u := server.RoutesFromStr(r)
			if len(u) == 0 {
				return nil, fmt.Errorf("nats route %q: want nats-route://host:port", r)
			}
			opts.Routes = append(opts.Routes, u...)
		}
	} else if len(o.Routes) > 0 {
		return nil, errors.New("nats routes need a cluster address of this server's own")
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(natsLogger{o.Logger.Named("nats")}, false, false, false)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS server on %s did not start within 10s (is the port taken?)", o.Listen)
	}
	return s, nil
}

// randomIfZero maps port 0 to nats-server's "any free port" (its 0 is the
// default port, 4222).
func randomIfZero(port int) int {
	if port == 0 {
		return server.RANDOM_PORT
	}
	return port
}

// splitHostPort reads host:port, with a missing host meaning loopback.
func splitHostPort(addr, what string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%s %q: want host:port, such as 127.0.0.1:4222", what, addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%s %q: the port must be a number from 0 to 65535", what, addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

// natsLogger passes the NATS server's logs to hclog.
type natsLogger struct{ l hclog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Trace(fmt.Sprintf(format, v...)) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Trace(fmt.Sprintf(format, v...)) }
