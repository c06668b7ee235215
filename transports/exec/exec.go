// Package exec is the transport whose connections are commands: dialing
// "exec://COMMAND ARGS…" runs the command, and the connection is its
// standard input (what is written) and standard output (what is read). Its
// standard error passes through to this process's. CloseWrite closes the
// command's standard input; Close ends the connection, and the command with
// it: it gets a moment to exit after its input and output close, then is
// asked to stop, then killed, and is always waited for, its exit status
// logged.
//
// The command line is split into words the way a POSIX shell splits them
// (quotes and backslashes work), by github.com/google/shlex, and run
// directly: no shell, unless the command is one ("exec://sh -c 'date; uptime'").
// In the endpoint form a '?' must be written %3F and a '%' as %25.
//
// Listening is refused: exec starts a command for each connection it
// dials. A bridge from a listening endpoint to exec:// serves a command the
// way inetd does, one process per connection:
//
//	tether bridge unix:///run/echo.sock exec://cat
//
// It is written on tether's public API only, like a user's transport.
// Importing this package registers [Transport] in [core.Transports] as
// "exec".
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	osexec "os/exec"
	"strings"
	"sync"
	"time"

	"github.com/google/shlex"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/internal/fileconn"
)

// Name is the registry name and endpoint scheme.
const Name = "exec"

// DefaultExitGrace is the ExitGrace of a Transport that sets none.
const DefaultExitGrace = 2 * time.Second

// maxExitGrace bounds the exit-grace option.
const maxExitGrace = time.Hour

// Transport runs commands. Its zero value passes their standard error to
// os.Stderr and gives a command DefaultExitGrace to exit.
type Transport struct {
	// Stderr receives the commands' standard error; nil is os.Stderr.
	Stderr io.Writer
	// ExitGrace is how long a command has to exit by itself once its
	// connection is closed, and then again once asked to stop, before it is
	// killed. Zero is DefaultExitGrace.
	ExitGrace time.Duration
}

var (
	_ core.Transport    = Transport{}
	_ core.Configurable = Transport{}
)

// Options declares exit-grace.
func (Transport) Options() []core.Option {
	return []core.Option{{Name: "exit-grace", Use: core.ForDial,
		Usage: "how long a command has to exit once its connection closes, and again after SIGTERM, before it is killed (such as 500ms; default 2s)"}}
}

// Configure returns a copy of t with the options applied.
func (t Transport) Configure(opts url.Values) (core.Transport, error) {
	if err := core.CheckOptions(Name, t.Options(), opts); err != nil {
		return nil, err
	}
	if v := opts.Get("exit-grace"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > maxExitGrace {
			return nil, &core.OptionError{Transport: Name, Option: "exit-grace", Value: v, Err: fmt.Errorf("want a duration from 1ns to %v, such as 500ms", maxExitGrace)}
		}
		t.ExitGrace = d
	}
	return t, nil
}

func (t Transport) grace() time.Duration {
	if t.ExitGrace > 0 {
		return t.ExitGrace
	}
	return DefaultExitGrace
}

func init() { core.Transports.Register(Transport{}) }

// Name returns "exec".
func (Transport) Name() string { return Name }

// Addr is a command line, split into words.
type Addr struct {
	Args []string
}

// Network returns "exec".
func (a *Addr) Network() string { return Name }

// String returns the command line, quoted so that it splits back into the
// same words.
func (a *Addr) String() string {
	words := make([]string, len(a.Args))
	for i, w := range a.Args {
		words[i] = quote(w)
	}
	return strings.Join(words, " ")
}

// quote leaves a word alone when it has nothing a shell would treat
// specially, and single-quotes it otherwise.
func quote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'"
}

// ParseAddr splits a command line into words.
func (Transport) ParseAddr(address string) (net.Addr, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func parse(address string) (*Addr, error) {
	args, err := shlex.Split(address)
	if err != nil {
		return nil, fmt.Errorf("exec: command line %q does not split into words: %w", address, err)
	}
	if len(args) == 0 {
		return nil, errors.New("exec: no command: write exec://COMMAND ARGS, such as exec://cat")
	}
	return &Addr{Args: args}, nil
}

// Listen is refused: exec dials.
func (Transport) Listen(context.Context, string) (net.Listener, error) {
	return nil, errors.New("exec: cannot listen: it starts a command for each connection it dials; to serve a command, bridge a listening endpoint to it, such as tether bridge unix:///run/svc.sock exec://COMMAND")
}

// Dial starts the command. ctx bounds the start only: the command runs as
// long as the connection.
func (t Transport) Dial(ctx context.Context, address string) (net.Conn, error) {
	a, err := parse(address)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "dial", Net: Name, Addr: a, Err: err}
	}
	cmd := osexec.Command(a.Args[0], a.Args[1:]...)
	cmd.Stderr = t.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// Pipes of our own (not cmd's StdinPipe): *os.File ends that the
	// runtime's poller waits on, so deadlines work.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close() // the command's ends
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &net.OpError{Op: "dial", Net: Name, Addr: a, Err: err}
	}
	c := &Conn{cmd: cmd, f: fileconn.New(Name, a, outR, inW), addr: a, grace: t.grace(), log: core.TransportLogger(ctx, Name), exited: make(chan struct{})}
	go c.wait()
	return c, nil
}

// Conn is a running command: its standard input and output.
type Conn struct {
	cmd     *osexec.Cmd
	f       *fileconn.Files // reads the command's standard output, writes its input
	addr    *Addr
	grace   time.Duration
	log     interface{ Info(string, ...any) }
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

var _ net.Conn = (*Conn)(nil)

var errNoConn = errors.New("exec: this Conn was not made by Transport.Dial")

func (c *Conn) ok() bool { return c != nil && c.cmd != nil }

// files is the command's pipes; nil (which answers fileconn.ErrNoFiles) for
// a Conn not made by Dial.
func (c *Conn) files() *fileconn.Files {
	if c == nil {
		return nil
	}
	return c.f
}

// wait waits for the command and logs how it ended.
func (c *Conn) wait() {
	c.waitErr = c.cmd.Wait()
	c.log.Info("command exited", "command", c.addr.String(), "pid", c.cmd.Process.Pid, "status", c.cmd.ProcessState.String())
	close(c.exited)
}

// Read reads the command's standard output.
func (c *Conn) Read(p []byte) (int, error) { return c.files().Read(p) }

// Write writes the command's standard input.
func (c *Conn) Write(p []byte) (int, error) { return c.files().Write(p) }

// CloseWrite closes the command's standard input.
func (c *Conn) CloseWrite() error { return c.files().CloseWrite() }

// Close ends the connection, and the command with it, the way closing a
// socket ends it for the peer: its standard input closes (what was written
// is still read by the command) and so does its standard output (a write
// there fails from now on). A command that has not exited after the
// transport's ExitGrace is asked to stop (SIGTERM), and after ExitGrace more
// it is killed. Close returns once it has exited.
func (c *Conn) Close() error {
	if !c.ok() {
		return errNoConn
	}
	c.once.Do(func() {
		c.f.CloseWrite()
		c.f.CloseRead()
		for _, stop := range []func(){func() { terminate(c.cmd.Process) }, func() { c.cmd.Process.Kill() }} {
			select {
			case <-c.exited:
				return
			case <-time.After(c.grace):
				stop()
			}
		}
		<-c.exited
	})
	return nil
}

// ExitErr returns how the command ended once it has (nil for a zero exit
// status), or nil while it runs.
func (c *Conn) ExitErr() error {
	if !c.ok() {
		return errNoConn
	}
	select {
	case <-c.exited:
		return c.waitErr
	default:
		return nil
	}
}

// LocalAddr returns the command line.
func (c *Conn) LocalAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.addr
}

// RemoteAddr returns the command line.
func (c *Conn) RemoteAddr() net.Addr { return c.LocalAddr() }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.files().SetDeadline(t) }

// SetReadDeadline sets the deadline for reading the command's output.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.files().SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for writing the command's input.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.files().SetWriteDeadline(t) }
