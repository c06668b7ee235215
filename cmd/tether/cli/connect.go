package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherkit/tether/core"
)

// prompt is shown before each line typed in a terminal, as in the classic
// socket chat.
const prompt = "->"

type connectFlags struct {
	common
	recvOnly    bool
	pipe        bool
	timeout     durationFlag
	reconnect   bool
	outbox      countFlag
	outboxBytes sizeFlag
	options     *optionFlags
}

// connectFlags defines the flags of "connect".
func (a *App) connectFlags() (*flag.FlagSet, *connectFlags) {
	var f connectFlags
	fs := a.newFlagSet("connect", "Chat with a hub. In a terminal: a \"->\" prompt; a message containing the word \"bye\" ends the chat.\n"+
		"With standard input not a terminal: each input line is one message, each received message one output line;\n"+
		"at the end of input everything sent is delivered, then it exits.")
	f.register(fs, a)
	fs.BoolVar(&f.recvOnly, "recv-only", false, "send nothing: print received messages until the hub closes")
	fs.BoolVar(&f.pipe, "pipe", false, "pipe mode even when standard input is a terminal")
	f.timeout = durationFlag{v: 10 * time.Second, min: time.Millisecond, max: maxTimeout}
	fs.Var(&f.timeout, "dial-timeout", "give up connecting after this long (with --reconnect: each attempt)")
	fs.BoolVar(&f.reconnect, "reconnect", false, "survive the hub going away: reconnect with backoff, keeping input in a bounded outbox meanwhile")
	f.outbox = countFlag{v: core.DefaultOutbox, min: 1, max: 1 << 24}
	fs.Var(&f.outbox, "outbox", "with --reconnect: most messages kept while the hub is away; input waits beyond that")
	f.outboxBytes = sizeFlag{v: core.DefaultOutboxBytes, min: 1, max: maxBudget}
	fs.Var(&f.outboxBytes, "outbox-bytes", "with --reconnect: most bytes of messages kept while the hub is away (suffixes KiB, MiB, GiB)")
	f.options = a.registerOptions(fs, core.ForDial)
	return fs, &f
}

func (a *App) connect(ctx context.Context, args []string) error {
	fs, f := a.connectFlags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := a.logger(&f.common)
	if err != nil {
		return err
	}
	tgt, err := a.resolve(f.addr, f.transport, f.options)
	if err != nil {
		return err
	}
	if err := f.options.checkUsed(tgt); err != nil {
		return err
	}
	if err := noRoom(tgt); err != nil {
		return err
	}
	codecName := f.codec
	if tgt.Codec != "" {
		codecName = tgt.Codec
	}
	codec, err := a.lookupCodec(codecName)
	if err != nil {
		return err
	}
	interactive := !f.pipe && !f.recvOnly && a.IsTerminal != nil && a.IsTerminal()
	if f.reconnect {
		return a.connectReconnecting(core.WithLogger(ctx, log), f, tgt, codec, interactive)
	}
	dctx, cancel := context.WithTimeout(core.WithLogger(ctx, log), f.timeout.v)
	conn, err := tgt.Dial(dctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", tgt, err)
	}
	log.Debug("connected", "endpoint", tgt.String(), "local", conn.LocalAddr().String())
	cl := core.NewClient(conn, codec, int(f.maxFrame.v))
	defer cl.Close()
	stop := context.AfterFunc(ctx, func() { cl.Close() })
	defer stop()
	return a.session(ctx, f, cl, interactive)
}

// link is what a connect session talks through: a *core.Client, or a
// reconnecting client behind redialLink.
type link interface {
	Queue(msg []byte) error
	Flush() error
	Send(msg []byte) error
	CloseWrite() error
	Receive() ([]byte, error)
	Buffered() int
}

// session runs the chat, the pipe or the listener over l until it ends.
func (a *App) session(ctx context.Context, f *connectFlags, l link, interactive bool) error {
	out := bufio.NewWriterSize(a.Stdout, 64<<10)
	var outMu sync.Mutex
	recvDone := make(chan error, 1)
	var leaving atomic.Bool // the user ended the chat: the hub's close is expected
	var got atomic.Int64    // messages received
	start := time.Now()
	ended := func(err error) error { return a.ended(ctx, maybeRefused(err, start, &got)) }
	go func() { recvDone <- a.receive(l, out, &outMu, interactive, &leaving, &got) }()

	if f.recvOnly {
		// Send nothing and keep the connection open both ways: a hub takes a
		// closed sending side as the client leaving.
		return ended(<-recvDone)
	}
	sendDone := make(chan error, 1)
	go func() {
		if interactive {
			sendDone <- a.chat(l, out, &outMu, int(f.maxFrame.v), &leaving)
		} else {
			sendDone <- a.pipeIn(l, int(f.maxFrame.v), &leaving)
		}
	}()
	select {
	case err := <-sendDone:
		if err != nil {
			return ended(err)
		}
		// Everything is sent and the sending side is closed: the hub closes
		// the connection once it has taken every message, which ends receive.
		return ended(<-recvDone)
	case err := <-recvDone:
		// The hub went away first.
		if err == nil && !interactive && !leaving.Load() {
			err = errors.New("the hub closed the connection before all input was sent")
		}
		return ended(err)
	}
}

// maybeRefused adds errMaybeRefused to a failure that came soon after
// connecting with nothing received: the hub may have refused the client.
func maybeRefused(err error, start time.Time, got *atomic.Int64) error {
	if err == nil || errors.Is(err, errMaybeRefused) || got.Load() > 0 || time.Since(start) >= refusedWindow {
		return err
	}
	return fmt.Errorf("%w (%w)", err, errMaybeRefused)
}

// refusedWindow is how soon after connecting a hub's close suggests that
// it refused the client.
const refusedWindow = 2 * time.Second

// errMaybeRefused says what a close right after connecting may mean,
// without pretending to know.
var errMaybeRefused = errors.New("the hub closed the connection right after accepting it: it may have refused this client (too many clients, an admission rule, a failed handshake); the hub's log says why")

// ended maps the end of a connect to its result: an interrupt is a normal
// way out.
func (a *App) ended(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// receive prints every message as one line until the stream ends. In pipe
// mode output is flushed whenever no further message is already buffered.
func (a *App) receive(cl link, out *bufio.Writer, mu *sync.Mutex, interactive bool, leaving *atomic.Bool, got *atomic.Int64) error {
	start := time.Now()
	for {
		msg, err := cl.Receive()
		if err != nil {
			mu.Lock()
			out.Flush()
			if interactive && !leaving.Load() {
				fmt.Fprintln(a.Stderr, "\r\033[Kthe hub closed the connection")
			}
			mu.Unlock()
			if errors.Is(err, io.EOF) {
				if got.Load() == 0 && time.Since(start) < refusedWindow && !leaving.Load() { // after the user's end of input, the hub's close is expected
					fmt.Fprintf(a.Stderr, "%s: note: %v\n", a.Name, errMaybeRefused)
				}
				return nil
			}
			return fmt.Errorf("receiving: %w", err)
		}
		got.Add(1)
		if interactive { // the prompt shares the terminal
			mu.Lock()
			out.WriteString("\r\033[K")
			out.Write(msg)
			out.WriteString("\n" + prompt)
			out.Flush()
			mu.Unlock()
			continue
		}
		out.Write(msg) // pipe mode: this goroutine alone writes standard output
		out.WriteByte('\n')
		if cl.Buffered() == 0 {
			if err := out.Flush(); err != nil {
				return fmt.Errorf("writing standard output: %w", err)
			}
		}
	}
}

// pipeIn sends each input line as one message, flushing when no more input
// is buffered, then closes the sending side.
func (a *App) pipeIn(cl link, maxFrame int, leaving *atomic.Bool) error {
	lr := newLineReader(a.Stdin, maxFrame)
	for {
		line, err := lr.next()
		if line != nil {
			if qerr := cl.Queue(line); qerr != nil {
				return fmt.Errorf("sending input line %d: %w", lr.n, qerr)
			}
			if !lr.pending() {
				if ferr := cl.Flush(); ferr != nil {
					return fmt.Errorf("sending: %w", ferr)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			leaving.Store(true)
			return cl.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}

// chat is the interactive loop: a prompt, a line, a message; "bye" ends it.
func (a *App) chat(cl link, out *bufio.Writer, mu *sync.Mutex, maxFrame int, leaving *atomic.Bool) error {
	lr := newLineReader(a.Stdin, maxFrame)
	for {
		mu.Lock()
		out.WriteString(prompt)
		out.Flush()
		mu.Unlock()
		line, err := lr.next()
		if line != nil {
			line = []byte(strings.TrimSuffix(string(line), "\r"))
			if serr := cl.Send(line); serr != nil {
				return fmt.Errorf("sending: %w", serr)
			}
			if saysBye(string(line)) {
				leaving.Store(true)
				return cl.CloseWrite()
			}
		}
		if errors.Is(err, io.EOF) {
			leaving.Store(true)
			mu.Lock()
			out.WriteString("\n")
			out.Flush()
			mu.Unlock()
			return cl.CloseWrite()
		}
		if err != nil {
			return err
		}
	}
}

// saysBye reports whether one of the message's words is "bye".
func saysBye(msg string) bool {
	for _, w := range strings.Fields(msg) {
		if strings.EqualFold(strings.Trim(w, ".,;:!?\"'"), "bye") {
			return true
		}
	}
	return false
}
