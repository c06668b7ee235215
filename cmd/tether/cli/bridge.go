package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/metrics"
)

type bridgeFlags struct {
	maxFrame     sizeFlag
	fromCodec    string
	toCodec      string
	maxConns     countFlag
	idle         durationFlag
	dialTimeout  durationFlag
	handshake    durationFlag
	shutdownWait durationFlag
	logLevel     string
	logJSON      bool
	metrics      metricsFlag
	options      *optionFlags
}

// bridgeFlags defines the flags of "bridge".
func (a *App) bridgeFlags() (*flag.FlagSet, *bridgeFlags) {
	var f bridgeFlags
	fs := a.newFlagSet("bridge", "Bridge FROM (an endpoint to listen on) to TO (an endpoint to dial): each connection\n"+
		"accepted on FROM gets its own connection to TO, and bytes pass both ways until both sides are done;\n"+
		"a half-close is passed on. With --from-codec and --to-codec, messages pass instead, reframed.\n\n"+
		"  "+a.Name+" bridge [flags] FROM TO\n"+
		"  "+a.Name+" bridge unix:///tmp/vm-svc.sock vsock://3:6000      a guest's service as a host socket\n"+
		"  "+a.Name+" bridge stdio:// vsock://3:22                       ssh -o ProxyCommand='...' vm\n"+
		"  "+a.Name+" bridge unix:///run/echo.sock exec://cat            a command per connection, inetd-style")
	f.maxFrame = sizeFlag{v: core.DefaultMaxFrame, min: 1, max: maxFrameLimit}
	fs.Var(&f.maxFrame, "max-frame", "with codecs: the largest message (suffixes KiB, MiB, GiB)")
	fs.StringVar(&f.fromCodec, "from-codec", "", "relay messages: the codec on FROM's side ("+joinNames(a.Codecs.Names())+"); needs --to-codec")
	fs.StringVar(&f.toCodec, "to-codec", "", "relay messages: the codec on TO's side; needs --from-codec")
	f.maxConns = countFlag{v: core.DefaultMaxConns, max: maxPeers}
	fs.Var(&f.maxConns, "max-conns", "most connections bridged at once; more are refused and logged (0 no limit)")
	f.idle = durationFlag{max: maxTimeout}
	fs.Var(&f.idle, "idle-timeout", "close a connection when nothing has moved either way for this long (0 never)")
	f.dialTimeout = durationFlag{v: core.DefaultDialTimeout, min: time.Millisecond, max: maxTimeout}
	fs.Var(&f.dialTimeout, "dial-timeout", "how long each connection keeps retrying TO, with backoff, while nobody answers there yet")
	f.handshake = durationFlag{v: core.DefaultHandshakeTimeout, min: time.Millisecond, max: maxTimeout}
	fs.Var(&f.handshake, "handshake-timeout", "time FROM's side has to finish its transport's handshake, for transports that have one")
	f.shutdownWait = durationFlag{v: defaultWait, max: maxTimeout}
	fs.Var(&f.shutdownWait, "shutdown-timeout", "on SIGINT or SIGTERM, how long open connections may go on before they are closed")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level on standard error (one line as each connection opens and ends at info): trace, debug, info, warn, error, off")
	fs.BoolVar(&f.logJSON, "log-json", false, "write logs as JSON lines")
	f.metrics.register(fs)
	f.options = a.registerOptions(fs, core.ForListen|core.ForDial)
	return fs, &f
}

// parseInterspersed parses flags before, between and after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errFlagHelp
			}
			return nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func (a *App) bridge(ctx context.Context, args []string) error {
	fs, f := a.bridgeFlags()
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("bridge takes two endpoints, FROM (to listen on) and TO (to dial): got %d; see \"%s bridge -h\"", len(pos), a.Name)
	}
	if (f.fromCodec == "") != (f.toCodec == "") {
		return usagef("give both --from-codec and --to-codec to relay messages, or neither to relay bytes")
	}
	if err := f.metrics.check(); err != nil {
		return err
	}
	log, err := a.logger(&common{logLevel: f.logLevel, logJSON: f.logJSON})
	if err != nil {
		return err
	}
	from, err := a.resolve(pos[0], "", &optionFlags{set: f.options.valuesFor(core.ForListen)})
	if err != nil {
		return err
	}
	to, err := a.resolve(pos[1], "", &optionFlags{set: f.options.valuesFor(core.ForDial)})
	if err != nil {
		return err
	}
	if err := f.options.checkUsed(from, to); err != nil {
		return err
	}
	for _, t := range []core.Target{from, to} {
		if err := noRoom(t); err != nil {
			return err
		}
	}
	b := &core.Bridge{
		DialTimeout:      f.dialTimeout.v,
		MaxFrame:         int(f.maxFrame.v),
		MaxConns:         noneIfZero(f.maxConns.v),
		IdleTimeout:      f.idle.v,
		HandshakeTimeout: f.handshake.v,
		Logger:           log,
	}
	if f.fromCodec != "" {
		if b.FromCodec, err = a.lookupCodec(f.fromCodec); err != nil {
			return err
		}
		if b.ToCodec, err = a.lookupCodec(f.toCodec); err != nil {
			return err
		}
	}
	ctx = core.WithLogger(ctx, log)
	b.Dial = func(c context.Context) (net.Conn, error) { return to.Dial(core.WithLogger(c, log)) }
	var lastErr error
	var errMu sync.Mutex
	collector := metrics.NewBridge(b)
	b.OnEnd = func(st core.BridgeStats) {
		collector.Ended(st)
		errMu.Lock()
		lastErr = st.Err
		errMu.Unlock()
	}
	b.OnRefuse = func(net.Addr, error) { collector.Refused() }
	l, err := from.Listen(ctx)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", from, err)
	}
	stopMetrics, err := a.startMetrics(&f.metrics, collector)
	if err != nil {
		l.Close()
		return err
	}
	defer stopMetrics()
	listening := core.Endpoint{Transport: from.Transport.Name(), Address: l.Addr().String()}
	log.Info("bridging", "from", listening.String(), "to", to.String())
	served := make(chan error, 1)
	go func() { served <- b.Serve(l) }()
	notify := startNotifier(func() string { return fmt.Sprintf("%d connections", b.Active()) })
	select {
	case <-ctx.Done():
		notify.stopping("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait.v)
		defer cancel()
		if err := b.Shutdown(sctx); err != nil {
			log.Warn("shutdown cut short; open connections were closed (raise --shutdown-timeout)", "error", err)
		}
		return nil
	case err := <-served:
		// The listener ended by itself (stdio:// serves one connection):
		// finish what is open, and say how the last connection ended.
		notify.stopping("the listener ended")
		b.Wait()
		if errors.Is(err, net.ErrClosed) {
			errMu.Lock()
			defer errMu.Unlock()
			return lastErr
		}
		return err
	}
}

// valuesFor returns the options given as flags whose use includes use.
func (o *optionFlags) valuesFor(use core.Use) url.Values {
	out := url.Values{}
	for name, v := range o.set {
		if o.options[name].Use&use != 0 {
			out[name] = v
		}
	}
	return out
}
