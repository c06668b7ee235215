package cli

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/federation"
)

// federateFlags are serve's flags for joining rooms across hubs.
type federateFlags struct {
	urls       string
	natsListen string
	cluster    string
	routes     string
	hubName    string
	creds      string
	ca         string
	cert       string
	key        string
	buffer     sizeFlag

	// The embedded server's TLS: its certificate, and the CAs whose client
	// certificates it requires.
	listenCert, listenKey, listenCA string
	listenTLS                       *tls.Config // built by check
}

// defaultFederateBuffer is how much a hub holds for NATS while it is away.
const defaultFederateBuffer = 8 << 20

func (f *federateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.urls, "federate", "", "share the rooms with every hub federated through this NATS system: nats://HOST:PORT (comma-separated for several servers; tls:// for TLS, nats://user:password@host for a password)")
	fs.StringVar(&f.natsListen, "nats-listen", "", "run a NATS server inside this hub at HOST:PORT (other hubs --federate to it) and federate through it")
	fs.StringVar(&f.cluster, "nats-cluster", "", "with --nats-listen: HOST:PORT where other hubs' embedded servers route to this one")
	fs.StringVar(&f.routes, "nats-routes", "", "with --nats-cluster: the other embedded servers' cluster addresses, nats-route://HOST:PORT (comma-separated)")
	host, _ := os.Hostname()
	fs.StringVar(&f.hubName, "hub-name", host, "this hub's name in other hubs' output (HUB/NAME: text)")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (a user JWT and its key)")
	fs.StringVar(&f.ca, "nats-ca", "", "CA certificates (PEM) to trust for the NATS server's TLS certificate")
	fs.StringVar(&f.cert, "nats-cert", "", "client certificate (PEM) for NATS, with --nats-key")
	fs.StringVar(&f.key, "nats-key", "", "client key (PEM) for --nats-cert")
	fs.StringVar(&f.listenCert, "nats-listen-cert", "", "with --nats-listen: the embedded server's TLS certificate (PEM), with --nats-listen-key; other hubs then --federate tls://HOST:PORT and trust it with --nats-ca")
	fs.StringVar(&f.listenKey, "nats-listen-key", "", "the key (PEM) of --nats-listen-cert")
	fs.StringVar(&f.listenCA, "nats-listen-ca", "", "with --nats-listen-cert: CA certificates (PEM); other hubs must show a certificate they issued (--nats-cert and --nats-key)")
	f.buffer = sizeFlag{v: defaultFederateBuffer, min: 1 << 10, max: 1 << 30}
	fs.Var(&f.buffer, "federate-buffer", "how much this hub holds for NATS while it is unreachable; messages past it are counted lost (suffixes KiB, MiB, GiB)")
}

// on reports whether federation was asked for.
func (f *federateFlags) on() bool { return f.urls != "" || f.natsListen != "" }

// check validates the flags before anything is opened.
func (f *federateFlags) check() error {
	if !f.on() {
		for name, v := range map[string]string{"--nats-cluster": f.cluster, "--nats-routes": f.routes, "--nats-creds": f.creds, "--nats-ca": f.ca, "--nats-cert": f.cert, "--nats-key": f.key,
			"--nats-listen-cert": f.listenCert, "--nats-listen-key": f.listenKey, "--nats-listen-ca": f.listenCA} {
			if v != "" {
				return usagef("%s needs --federate or --nats-listen", name)
			}
		}
		return nil
	}
	if f.urls != "" && f.natsListen != "" {
		return usagef("--federate and --nats-listen: give one (a hub with --nats-listen federates through its own server; join servers with --nats-cluster and --nats-routes)")
	}
	for _, u := range splitList(f.urls) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
			return usagef("--federate %q: want nats://HOST:PORT or tls://HOST:PORT", u)
		}
	}
	if f.cluster != "" && f.natsListen == "" {
		return usagef("--nats-cluster needs --nats-listen")
	}
	if f.routes != "" && f.cluster == "" {
		return usagef("--nats-routes needs --nats-cluster (the routes join this hub's embedded server to others)")
	}
	for _, r := range splitList(f.routes) {
		if p, err := url.Parse(r); err != nil || p.Scheme != "nats-route" || p.Host == "" {
			return usagef("--nats-routes %q: want nats-route://HOST:PORT", r)
		}
	}
	if (f.cert == "") != (f.key == "") {
		return usagef("--nats-cert and --nats-key go together")
	}
	for name, path := range map[string]string{"--nats-creds": f.creds, "--nats-ca": f.ca, "--nats-cert": f.cert, "--nats-key": f.key} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return usagef("%s: %v", name, err)
		}
	}
	if f.hubName == "" || strings.ContainsAny(f.hubName, "/\n\r\x00") {
		return usagef("--hub-name %q: give a name without '/' or control characters", f.hubName)
	}
	return f.checkListenTLS()
}

// checkListenTLS loads the embedded server's certificate and CAs, so that a
// bad file is a usage error before anything is opened.
func (f *federateFlags) checkListenTLS() error {
	switch {
	case f.listenCert == "" && f.listenKey == "" && f.listenCA == "":
		return nil
	case f.natsListen == "":
		return usagef("--nats-listen-cert, --nats-listen-key and --nats-listen-ca need --nats-listen (a hub that runs its own NATS server)")
	case f.listenCert == "" || f.listenKey == "":
		return usagef("--nats-listen-cert and --nats-listen-key go together")
	}
	pair, err := tls.LoadX509KeyPair(f.listenCert, f.listenKey)
	if err != nil {
		return usagef("--nats-listen-cert and --nats-listen-key: %v", err)
	}
	f.listenTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if f.listenCA != "" {
		pem, err := os.ReadFile(f.listenCA)
		if err != nil {
			return usagef("--nats-listen-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usagef("--nats-listen-ca %s: no PEM certificate in it", f.listenCA)
		}
		f.listenTLS.ClientCAs = pool
		f.listenTLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// federated is a running federation and what it needs closed.
type federated struct {
	fed      *federation.Federation
	nc       *nats.Conn
	embedded *server.Server
}

// startFederation starts the embedded NATS server if asked, connects, and
// joins the rooms. The hub starts even while NATS is unreachable: its rooms
// work locally, and federation joins them when NATS comes.
func (a *App) startFederation(f *federateFlags, srv *core.Server, rooms []string, log hclog.Logger, onRemote func(room, hub, sender string, msg []byte)) (*federated, error) {
	fd := &federated{}
	opts := []nats.Option{
		nats.Name("tether hub " + f.hubName),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(int(f.buffer.v)),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("federation: NATS unreachable; rooms go on locally, and messages wait in the buffer", "error", err, "buffer", f.buffer.String())
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("federation: NATS reached", "server", nc.ConnectedUrlRedacted()) }),
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("federation: NATS reached", "server", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("federation: NATS reports a problem (a slow consumer drops messages, which are counted lost)", "subject", subject, "error", err)
		}),
	}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	if f.ca != "" {
		opts = append(opts, nats.RootCAs(f.ca))
	}
	if f.cert != "" {
		opts = append(opts, nats.ClientCert(f.cert, f.key))
	}
	servers := strings.Join(splitList(f.urls), ",")
	if f.natsListen != "" {
		s, err := federation.StartServer(federation.ServerOptions{Listen: f.natsListen, Cluster: f.cluster, Routes: splitList(f.routes), Name: f.hubName, TLS: f.listenTLS, Logger: log})
		if err != nil {
			return nil, err
		}
		fd.embedded = s
		// The hub's own connection is in-process: no TLS there, whatever
		// the server's port asks of other hubs.
		servers = strings.Replace(s.ClientURL(), "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(s))
		fmt.Fprintf(a.Stderr, "%s: NATS for other hubs at %s (tether serve --federate %s)\n", a.Name, s.ClientURL(), s.ClientURL())
	}
	nc, err := nats.Connect(servers, opts...)
	if err != nil {
		fd.close()
		return nil, fmt.Errorf("federation: %w", err)
	}
	fd.nc = nc
	fd.fed = &federation.Federation{Conn: nc, Server: srv, Hub: f.hubName, Logger: log, OnRemote: onRemote}
	if err := fd.fed.Join(rooms...); err != nil {
		fd.close()
		return nil, err
	}
	if !nc.IsConnected() {
		log.Warn("federation: NATS not reachable yet; rooms work locally, and federation joins them when it is", "servers", servers)
	}
	return fd, nil
}

// publish sends a local message to the other hubs; a failure is counted
// and logged by the federation.
func (fd *federated) publish(room, sender, identity string, msg []byte) {
	if fd != nil {
		fd.fed.Publish(room, sender, identity, msg)
	}
}

// close leaves the federation: what is buffered is flushed for up to a
// second, then the connection and the embedded server close.
func (fd *federated) close() {
	if fd == nil {
		return
	}
	if fd.fed != nil {
		fd.fed.Close()
	}
	if fd.nc != nil {
		fd.nc.FlushTimeout(time.Second)
		fd.nc.Close()
	}
	if fd.embedded != nil {
		fd.embedded.Shutdown()
	}
}
