package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/user"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/tcp"
)

type serveFlags struct {
	common
	listen       listFlag
	stall        time.Duration
	shutdownWait time.Duration
	chat         bool
	quiet        bool
	socketMode   fileMode
	socketGroup  string
	maxConns     int
	readBudget   byteSize
	idle         time.Duration
	writeTimeout time.Duration
	handshake    time.Duration
	names        string
	allow        access
	tls          tlsFlags
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// listener is one resolved --addr or --listen.
type listener struct {
	target core.Target
	codec  core.Codec
}

func (a *App) serve(ctx context.Context, args []string) error {
	var f serveFlags
	fs := a.newFlagSet("serve", "Run a hub: every message a client sends reaches every other client.\n"+
		"Standard output gets one line per event: a peer connected, a message, a peer left.\n"+
		"Lines typed on standard input go to every client. SIGINT or SIGTERM stop it gracefully.")
	f.register(fs, a)
	fs.Var(&f.listen, "listen", "another listener, as scheme://address[?codec=NAME] (repeatable); one hub serves them all")
	fs.DurationVar(&f.stall, "stall-timeout", core.DefaultStallTimeout, "disconnect a client that reads nothing for this long while messages wait for it (0 never)")
	fs.DurationVar(&f.shutdownWait, "shutdown-timeout", 10*time.Second, "on SIGINT or SIGTERM, how long to deliver queued messages before closing")
	fs.BoolVar(&f.chat, "chat", false, "prefix every relayed message with its sender's name (\"#2: hi\"); off: relayed byte-exact")
	fs.BoolVar(&f.quiet, "quiet", false, "do not print messages on standard output, only connects and leaves")
	f.socketMode = 0o600
	fs.Var(&f.socketMode, "socket-mode", "permissions of a unix socket file it creates, in octal")
	fs.StringVar(&f.socketGroup, "socket-group", "", "group owning a unix socket file it creates (name or number), for shared use with --socket-mode 0660")
	fs.IntVar(&f.maxConns, "max-conns", core.DefaultMaxConns, "most clients at once; more are refused and logged (0 no limit)")
	f.readBudget = core.DefaultReadBudget
	fs.Var(&f.readBudget, "read-budget", "most bytes all clients' large half-received frames may hold at once; past it a client is refused (suffixes KiB, MiB)")
	fs.DurationVar(&f.idle, "idle-timeout", 0, "disconnect a client when nothing has moved either way for this long, such as a half-open connection (0 never)")
	fs.DurationVar(&f.writeTimeout, "write-timeout", 0, "disconnect a client that takes longer than this to take one batch of messages, even while reading slowly (0 no bound)")
	fs.DurationVar(&f.handshake, "handshake-timeout", core.DefaultHandshakeTimeout, "time a client has to finish a transport handshake (TLS)")
	fs.StringVar(&f.names, "names", "number", "how peers are named in output and --chat: number (#3) or identity (vm(3), uid=1000,pid=42, cn=alice)")
	fs.Var(&f.allow.uids, "allow-uid", "unix: admit only these user ids (comma-separated, repeatable)")
	fs.Var(&f.allow.gids, "allow-gid", "unix: admit only these group ids")
	fs.Var(&f.allow.cids, "allow-cid", "vsock: admit only these CIDs")
	fs.Var(&f.allow.nets, "allow-net", "tcp and tls: admit only these address ranges (127.0.0.0/8, ::1, 10.0.0.0/24)")
	f.tls.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.names != "number" && f.names != "identity" {
		return usagef("--names %q: want number or identity", f.names)
	}
	log, err := a.logger(&f.common)
	if err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The hub allocates nothing per message, so the collector seldom
		// runs and a tighter target costs no measurable throughput (1.2 M
		// deliveries in 0.42-0.45 s either way), while 10,000 idle clients
		// cost 7.4 KiB each instead of 8.5 KiB. GOGC in the environment wins.
		debug.SetGCPercent(50)
	}
	lns, err := a.listeners(&f, fs)
	if err != nil {
		return err
	}

	out := newPrinter(a.Stdout)
	defer out.close()
	srv := &core.Server{
		MaxFrame:         int(f.maxFrame),
		StallTimeout:     f.stall,
		Chat:             f.chat,
		MaxConns:         f.maxConns,
		ReadBudget:       int64(f.readBudget),
		IdleTimeout:      f.idle,
		WriteTimeout:     f.writeTimeout,
		HandshakeTimeout: f.handshake,
		NameByIdentity:   f.names == "identity",
		OnJoin: func(p *core.Peer) {
			out.line(fmt.Sprintf("%s connected (%s %s)", p.Name(), p.LocalAddr().Network(), remote(p)))
		},
		Logger: log,
		OnLeave: func(p *core.Peer, err error) {
			if err != nil {
				out.line(fmt.Sprintf("%s disconnected: %v", p.Name(), err))
				return
			}
			out.line(p.Name() + " left")
		},
	}
	if f.stall == 0 {
		srv.StallTimeout = -1
	}
	if f.maxConns == 0 {
		srv.MaxConns = -1
	}
	if !f.allow.empty() {
		srv.Admit = f.allow.admit
	}
	if !f.quiet {
		srv.OnMessage = func(p *core.Peer, msg []byte) { out.message(p.Name(), msg) }
	}

	ctx = core.WithLogger(ctx, log)
	// Listen on everything first, so that a bad address fails before anyone connects.
	var opened []net.Listener
	closeAll := func() {
		for _, l := range opened {
			l.Close()
		}
	}
	for i := range lns {
		ln := &lns[i]
		if err := f.tls.configure(&ln.target, true); err != nil {
			closeAll()
			return err
		}
		if ln.target.Transport.Name() == "unix" {
			if err := prepareSocketDir(ln.target.Address); err != nil {
				closeAll()
				return err
			}
		}
		l, err := ln.target.Listen(ctx)
		if err != nil {
			closeAll()
			return fmt.Errorf("listening on %s: %w", ln.target, err)
		}
		opened = append(opened, l)
		if err := a.applyMode(l, f.socketMode, f.socketGroup, fs); err != nil {
			closeAll()
			return err
		}
		if ta, ok := l.Addr().(*net.TCPAddr); ok && ln.target.Transport.Name() == "tcp" && !tcp.IsLoopback(ta) {
			log.Warn("listening beyond this machine without encryption; anyone who can reach the port can join", "addr", ta.String())
		}
		fmt.Fprintf(a.Stderr, "%s: serving %s://%s (codec %s)\n", a.Name, ln.target.Transport.Name(), l.Addr(), ln.codec.Name())
	}

	errc := make(chan error, len(opened))
	for i, l := range opened {
		go func() { errc <- srv.Serve(l, lns[i].codec) }()
	}
	go a.hostInput(srv, int(f.maxFrame))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown cut short; queued messages were dropped", "error", err)
	}
	srv.Wait()
	if serveErr != nil && !errors.Is(serveErr, core.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// listeners resolves --addr and every --listen.
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
	if addrSet || len(f.listen) == 0 {
		tgt, err := a.resolve(f.addr, f.transport)
		if err != nil {
			return nil, err
		}
		out = append(out, listener{tgt, codec})
	}
	for _, spec := range f.listen {
		c := codec
		if i := strings.LastIndex(spec, "?codec="); i >= 0 {
			if c, err = a.lookupCodec(spec[i+len("?codec="):]); err != nil {
				return nil, err
			}
			spec = spec[:i]
		}
		tgt, err := a.resolve(spec, "")
		if err != nil {
			return nil, err
		}
		out = append(out, listener{tgt, c})
	}
	return out, nil
}

// applyMode sets a unix socket file's group and permissions when
// --socket-group or --socket-mode ask for it; listeners without a file
// refuse them.
func (a *App) applyMode(l net.Listener, mode fileMode, group string, fs *flag.FlagSet) error {
	modeSet := false
	fs.Visit(func(fl *flag.Flag) { modeSet = modeSet || fl.Name == "socket-mode" })
	if !modeSet && group == "" {
		return nil
	}
	m, ok := l.(interface {
		SetMode(mode os.FileMode) error
		SetGroup(gid int) error
	})
	if !ok {
		return usagef("--socket-mode and --socket-group apply to unix path sockets, not to %s", l.Addr())
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			return usageError{err}
		}
		if err := m.SetGroup(gid); err != nil {
			return err
		}
	}
	if modeSet {
		return m.SetMode(os.FileMode(mode))
	}
	return nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %q: %w", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// hostInput broadcasts each line of standard input to every client.
func (a *App) hostInput(srv *core.Server, maxFrame int) {
	lr := newLineReader(a.Stdin, maxFrame)
	for {
		line, err := lr.next()
		if line != nil {
			if srv.Broadcast(line) != nil {
				return
			}
		}
		if err != nil {
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

// printer serialises output lines from many goroutines. A flusher
// goroutine writes them out whenever it is poked and nothing more is being
// written, so a busy hub makes one write for many lines, and a quiet one
// shows each line at once.
type printer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	closed bool
	kick   chan struct{} // cap 1: there is something to flush
	done   chan struct{}
}

func newPrinter(w interface{ Write([]byte) (int, error) }) *printer {
	p := &printer{w: bufio.NewWriterSize(w, 64<<10), kick: make(chan struct{}, 1), done: make(chan struct{})}
	go p.flusher()
	return p
}

func (p *printer) flusher() {
	defer close(p.done)
	for range p.kick {
		p.mu.Lock()
		p.w.Flush()
		p.mu.Unlock()
	}
}

// unlockAndPoke ends a write: it has the flusher run and releases the lock
// (the poke never blocks, and under the lock it cannot meet a closed channel).
func (p *printer) unlockAndPoke() {
	if !p.closed {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	p.mu.Unlock()
}

func (p *printer) line(s string) {
	p.mu.Lock()
	p.w.WriteString(s)
	p.w.WriteByte('\n')
	p.unlockAndPoke()
}

// message prints "name: text", quoting text when it holds control bytes or
// invalid UTF-8 so that one message is always one line.
func (p *printer) message(name string, msg []byte) {
	p.mu.Lock()
	p.w.WriteString(name)
	p.w.WriteString(": ")
	writePrintable(p.w, msg)
	p.w.WriteByte('\n')
	p.unlockAndPoke()
}

// close flushes what is left and stops the flusher.
func (p *printer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.w.Flush()
	close(p.kick)
	p.mu.Unlock()
	<-p.done
}
