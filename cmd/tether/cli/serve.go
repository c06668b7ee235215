package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/federation"
	"github.com/tetherkit/tether/metrics"
)

type serveFlags struct {
	common
	listen       listFlag
	stall        durationFlag
	shutdownWait durationFlag
	chat         bool
	quiet        bool
	maxConns     countFlag
	readBudget   sizeFlag
	idle         durationFlag
	writeTimeout durationFlag
	handshake    durationFlag
	names        string
	room         string
	fed          federateFlags
	metrics      metricsFlag
	options      *optionFlags
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// listener is one resolved --addr or --listen.
type listener struct {
	target core.Target
	codec  core.Codec
	room   string
}

// Bounds of serve's numeric flags.
const (
	maxTimeout  = 24 * time.Hour
	maxPeers    = 1 << 20
	maxBudget   = 1 << 40
	defaultWait = 10 * time.Second
)

// serveFlags defines the flags of "serve".
func (a *App) serveFlags() (*flag.FlagSet, *serveFlags) {
	var f serveFlags
	fs := a.newFlagSet("serve", "Run a hub: every message a client sends reaches every other client.\n"+
		"Standard output gets one line per event: a peer connected, a message, a peer left.\n"+
		"Lines typed on standard input go to every client. SIGINT or SIGTERM stop it gracefully.")
	f.register(fs, a)
	fs.Var(&f.listen, "listen", "another listener, as scheme://address[?codec=NAME&option=value] (repeatable); one hub serves them all")
	f.stall = durationFlag{v: core.DefaultStallTimeout, max: maxTimeout}
	fs.Var(&f.stall, "stall-timeout", "disconnect a client that reads nothing for this long while messages wait for it (0 never)")
	f.shutdownWait = durationFlag{v: defaultWait, max: maxTimeout}
	fs.Var(&f.shutdownWait, "shutdown-timeout", "on SIGINT or SIGTERM, how long to deliver queued messages before closing (0: close at once)")
	fs.BoolVar(&f.chat, "chat", false, "prefix every relayed message with its sender's name (\"#2: hi\"); off: relayed byte-exact")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print messages on standard output, only connects and leaves")
	f.maxConns = countFlag{v: core.DefaultMaxConns, max: maxPeers}
	fs.Var(&f.maxConns, "max-conns", "most clients at once; more are refused and logged (0 no limit)")
	f.readBudget = sizeFlag{v: core.DefaultReadBudget, min: 1, max: maxBudget}
	fs.Var(&f.readBudget, "read-budget", "most bytes all clients' large half-received frames may hold at once; past it a client is refused (suffixes KiB, MiB, GiB)")
	f.idle = durationFlag{max: maxTimeout}
	fs.Var(&f.idle, "idle-timeout", "disconnect a client when nothing has moved either way for this long, such as a half-open connection (0 never)")
	f.writeTimeout = durationFlag{max: maxTimeout}
	fs.Var(&f.writeTimeout, "write-timeout", "disconnect a client that takes longer than this to take one batch of messages, even while reading slowly (0 no bound)")
	f.handshake = durationFlag{v: core.DefaultHandshakeTimeout, min: time.Millisecond, max: maxTimeout}
	fs.Var(&f.handshake, "handshake-timeout", "time a client has to finish its transport's handshake, for transports that have one")
	fs.StringVar(&f.room, "room", core.DefaultRoom, "the room of --addr, of --listen endpoints without ?room=NAME, and of lines typed into serve; rooms never mix")
	fs.StringVar(&f.names, "names", "number", "how peers are named in output and --chat: number (#3) or identity (vm(3), uid=1000,pid=42, cn=alice)")
	f.fed.register(fs)
	f.metrics.register(fs)
	f.options = a.registerOptions(fs, core.ForListen)
	return fs, &f
}

func (a *App) serve(ctx context.Context, args []string) error {
	fs, f := a.serveFlags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.names != "number" && f.names != "identity" {
		return usagef("--names %q: want number or identity", f.names)
	}
	if err := checkRoom("--room", f.room); err != nil {
		return err
	}
	if err := f.fed.check(); err != nil {
		return err
	}
	if err := f.metrics.check(); err != nil {
		return err
	}
	log, err := a.logger(&f.common)
	if err != nil {
		return err
	}
	lns, err := a.listeners(f, fs)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The hub allocates nothing per message, so the collector seldom
		// runs and a tighter target costs no measurable throughput, while
		// idle clients cost less memory each. GOGC in the environment wins.
		debug.SetGCPercent(50)
	}

	out := newPrinter(a.Stdout)
	defer out.close()
	// With one room the output is the classic chat's; with more, each line
	// names its room.
	roomPrefix := func(string) string { return "" }
	if roomsOf(lns) > 1 {
		roomPrefix = func(room string) string { return "[" + room + "] " }
	}
	name := func(p *core.Peer) string { return roomPrefix(p.Room()) + p.Name() }
	srv := &core.Server{
		Room:             f.room,
		MaxFrame:         int(f.maxFrame.v),
		StallTimeout:     noneIfZero(f.stall.v),
		Chat:             f.chat,
		MaxConns:         noneIfZero(f.maxConns.v),
		ReadBudget:       f.readBudget.v,
		IdleTimeout:      f.idle.v,
		WriteTimeout:     f.writeTimeout.v,
		HandshakeTimeout: f.handshake.v,
		NameByIdentity:   f.names == "identity",
		OnJoin: func(p *core.Peer) {
			who := remote(p)
			if _, ok := p.Conn().(core.Identifier); ok && p.Identity() != who {
				who += ", " + p.Identity() // learned in a handshake: a certificate, a name
			}
			out.line(fmt.Sprintf("%s connected (%s %s)", name(p), p.LocalAddr().Network(), who))
		},
		Logger: log,
		OnLeave: func(p *core.Peer, err error) {
			if err != nil {
				out.line(fmt.Sprintf("%s disconnected: %v%s", name(p), err, flagHint(err)))
				return
			}
			out.line(name(p) + " left")
		},
	}

	ctx = core.WithLogger(ctx, log)
	// Listen on everything first, so that a bad address fails before anyone connects.
	var opened []net.Listener
	closeAll := func() {
		for _, l := range opened {
			l.Close()
		}
	}
	for _, ln := range lns {
		l, err := ln.target.Listen(ctx)
		if err != nil {
			closeAll()
			return fmt.Errorf("listening on %s: %w", ln.target, err)
		}
		opened = append(opened, l)
		served := core.Endpoint{Transport: ln.target.Transport.Name(), Address: l.Addr().String()}
		room := ""
		if ln.room != core.DefaultRoom {
			room = ", room " + ln.room
		}
		fmt.Fprintf(a.Stderr, "%s: serving %s (codec %s%s)\n", a.Name, served, ln.codec.Name(), room)
	}

	var fd *federated
	if f.fed.on() {
		var rooms []string
		for _, ln := range lns {
			rooms = append(rooms, ln.room)
		}
		onRemote := func(room, hub, sender string, msg []byte) {}
		if !f.quiet {
			onRemote = func(room, hub, sender string, msg []byte) { out.message(roomPrefix(room)+hub+"/"+sender, msg) }
		}
		if fd, err = a.startFederation(&f.fed, srv, rooms, log, onRemote); err != nil {
			closeAll()
			return err
		}
		defer fd.close()
	}
	var fedStats *federation.Federation
	var natsConn *nats.Conn
	if fd != nil {
		fedStats, natsConn = fd.fed, fd.nc
	}
	collector := metrics.NewHub(srv, fedStats, natsConn)
	srv.OnRefuse = func(_ net.Addr, err error) { collector.Refused(err) }
	onLeave := srv.OnLeave
	srv.OnLeave = func(p *core.Peer, err error) {
		collector.Left(err)
		onLeave(p, err)
	}
	stopMetrics, err := a.startMetrics(&f.metrics, collector)
	if err != nil {
		closeAll()
		return err
	}
	defer stopMetrics()
	switch {
	case fd != nil && !f.quiet:
		srv.OnMessage = func(p *core.Peer, msg []byte) {
			out.message(name(p), msg)
			fd.publish(p.Room(), p.Name(), p.Identity(), msg)
		}
	case fd != nil:
		srv.OnMessage = func(p *core.Peer, msg []byte) { fd.publish(p.Room(), p.Name(), p.Identity(), msg) }
	case !f.quiet:
		srv.OnMessage = func(p *core.Peer, msg []byte) { out.message(name(p), msg) }
	}

	errc := make(chan error, len(opened))
	for i, l := range opened {
		go func() { errc <- srv.ServeRoom(l, lns[i].codec, lns[i].room) }()
	}
	go a.hostInput(srv, int(f.maxFrame.v), log, func(line []byte) { fd.publish(f.room, core.HostName, "", line) })
	notify := startNotifier(func() string { return fmt.Sprintf("%d peers", srv.Stats().Peers) })

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	notify.stopping("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait.v)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short; queued messages were dropped (raise --shutdown-timeout)", "error", err)
	}
	srv.Wait()
	if serveErr != nil && !errors.Is(serveErr, core.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// noneIfZero maps a flag's 0 ("no limit") to the library's negative value.
func noneIfZero[T int | time.Duration](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// listeners resolves --addr and every --listen, with their options, before
// anything is opened.
func (a *App) listeners(f *serveFlags, fs *flag.FlagSet) ([]listener, error) {
	codec, err := a.lookupCodec(f.codec)
	if err != nil {
		return nil, err
	}
	var out []listener
	addrSet := false
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "addr" || fl.Name == "transport" {
			addrSet = true
		}
	})
	specs := []string(f.listen)
	if addrSet || len(specs) == 0 {
		specs = append([]string{f.addr}, specs...)
	}
	var targets []core.Target
	for i, spec := range specs {
		transport := ""
		if i == 0 && (addrSet || len(f.listen) == 0) {
			transport = f.transport
		}
		tgt, err := a.resolve(spec, transport, f.options)
		if err != nil {
			return nil, err
		}
		c := codec
		if tgt.Codec != "" {
			if c, err = a.lookupCodec(tgt.Codec); err != nil {
				return nil, err
			}
		}
		room := f.room
		if tgt.Room != "" {
			if err := checkRoom(spec, tgt.Room); err != nil {
				return nil, err
			}
			room = tgt.Room
		}
		out = append(out, listener{tgt, c, room})
		targets = append(targets, tgt)
	}
	return out, f.options.checkUsed(targets...)
}

// hostInput broadcasts each line of standard input to every client, and
// hands it to federate.
func (a *App) hostInput(srv *core.Server, maxFrame int, log hclog.Logger, federate func([]byte)) {
	lr := newLineReader(a.Stdin, maxFrame)
	for {
		line, err := lr.next()
		if line != nil {
			if err := srv.Broadcast(line); errors.Is(err, core.ErrServerClosed) {
				return
			} else if err != nil {
				log.Warn("a line typed into serve reached nobody", "error", err)
			}
			federate(line)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Warn("standard input", "error", err)
			}
			if errors.Is(err, errLineTooLong) {
				continue
			}
			return
		}
	}
}

func remote(p *core.Peer) string {
	if a := p.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "peer"
}

// printer writes serve's output lines from many goroutines, in order and
// losing none, off the relay path: a peer appends its line to a buffer
// under a short lock, and one flusher goroutine writes whatever has
// gathered in one system call, outside the lock. A busy hub makes one write
// for many lines; a quiet one shows each line at once. When standard output
// is slower than the room, the buffer fills to printLimit and the peers
// wait to append: the room slows to the pace of the output, and nothing is
// dropped.
type printer struct {
	mu     sync.Mutex
	buf    []byte        // lines not yet handed to the writer
	spare  []byte        // the flusher's buffer, swapped with buf
	room   chan struct{} // closed when the flusher takes the buffer; made when someone waits for room
	kick   chan struct{} // cap 1: lines are waiting
	closed bool
	done   chan struct{}
	w      io.Writer
	err    error // the first write error; output stops after it
}

// printLimit is how much output may wait for a slow standard output
// before the room slows down.
const printLimit = 1 << 20

func newPrinter(w io.Writer) *printer {
	p := &printer{w: w, buf: make([]byte, 0, 64<<10), spare: make([]byte, 0, 64<<10),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.flusher()
	return p
}

func (p *printer) flusher() {
	defer close(p.done)
	for range p.kick {
		p.mu.Lock()
		p.buf, p.spare = p.spare[:0], p.buf
		if p.room != nil {
			close(p.room)
			p.room = nil
		}
		p.mu.Unlock()
		if len(p.spare) > 0 && p.err == nil {
			_, p.err = p.w.Write(p.spare)
		}
	}
	p.mu.Lock() // closed: what close left
	if len(p.buf) > 0 && p.err == nil {
		p.w.Write(p.buf)
	}
	p.mu.Unlock()
}

// begin takes the lock once there is room.
func (p *printer) begin() {
	p.mu.Lock()
	for len(p.buf) >= printLimit && !p.closed {
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		<-room
		p.mu.Lock()
	}
}

// end releases the lock, and wakes the flusher when the buffer has just
// stopped being empty (a busy flusher finds the rest itself).
func (p *printer) end(before int) {
	if before == 0 && !p.closed {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

func (p *printer) line(s string) {
	p.begin()
	before := len(p.buf)
	p.buf = append(append(p.buf, s...), '\n')
	p.end(before)
}

// message prints "name: text", quoting text when it holds control bytes or
// invalid UTF-8 so that one message is always one line.
func (p *printer) message(name string, msg []byte) {
	p.begin()
	before := len(p.buf)
	p.buf = append(append(p.buf, name...), ": "...)
	p.buf = appendPrintable(p.buf, msg)
	p.buf = append(p.buf, '\n')
	p.end(before)
}

// close writes what is left and stops the flusher.
func (p *printer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
	close(p.kick)
	p.mu.Unlock()
	<-p.done
}

// roomsOf counts the distinct rooms of the listeners.
func roomsOf(lns []listener) int {
	seen := map[string]bool{}
	for _, ln := range lns {
		seen[ln.room] = true
	}
	return len(seen)
}

// maxRoomName bounds a room's name.
const maxRoomName = 64

// checkRoom refuses a room name that is not 1 to 64 letters, digits, '-'
// or '_' (a name that reads the same in a log, a metric label and a NATS
// subject).
func checkRoom(where, name string) error {
	ok := name != "" && len(name) <= maxRoomName
	for _, r := range name {
		ok = ok && (r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}
	if !ok {
		return usagef("%s: room %q: want 1 to %d letters, digits, '-' or '_', such as vms", where, name, maxRoomName)
	}
	return nil
}

// noRoom refuses ?room= where there is no hub to choose a room in.
func noRoom(t core.Target) error {
	if t.Room != "" {
		return usagef("%s: ?room= is a hub listener's setting (tether serve --listen ENDPOINT?room=NAME); a client joins the room of the listener it dials", t)
	}
	return nil
}
