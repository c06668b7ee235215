// Package cli is the tether command line, importable so that a program can
// register its own transports or codecs and run the full command set on top
// of them:
//
//	func main() {
//		core.Transports.Register(mytransport.Transport{})
//		os.Exit(cli.Main())
//	}
//
// Exit codes: 0 success, 1 a runtime failure (nobody listening, connection
// lost, a limit exceeded), 2 a usage error (a bad flag, an unknown name).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tetherkit/tether/core"

	_ "github.com/tetherkit/tether/codecs/all"     // built-in codecs
	_ "github.com/tetherkit/tether/transports/all" // built-in transports
)

// Version is the tether version printed by "tether version".
var Version = "0.1.0-dev"

// App is one run of the command line. The zero value is not ready: use
// [New], which fills in the default registries and the process's standard
// streams, and change what a test or an embedding program needs.
type App struct {
	Name       string // program name in messages, "tether"
	Transports *core.Registry[core.Transport]
	Codecs     *core.Registry[core.Codec]
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// IsTerminal reports whether Stdin is an interactive terminal; nil means
	// it is not.
	IsTerminal func() bool
}

// New returns an App over the default registries and os's standard streams.
func New() *App {
	return &App{
		Name:       "tether",
		Transports: core.Transports,
		Codecs:     core.Codecs,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		IsTerminal: stdinIsTerminal,
	}
}

// Main runs the command line with os.Args and returns the exit code. SIGINT
// and SIGTERM stop the command gracefully; a second signal stops it at once.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process the default way
	}()
	return New().Run(ctx, os.Args[1:])
}

// usageError marks errors that deserve exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Run runs one command (args without the program name) and returns the exit
// code.
func (a *App) Run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.usage(a.Stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = a.serve(ctx, args[1:])
	case "connect":
		err = a.connect(ctx, args[1:])
	case "bridge":
		err = a.bridge(ctx, args[1:])
	case "bench":
		err = a.bench(ctx, args[1:])
	case "doctor":
		err = a.doctor(ctx, args[1:])
	case "version":
		fmt.Fprintf(a.Stdout, "%s %s\n", a.Name, Version)
	case "help", "-h", "--help", "-help":
		a.usage(a.Stdout)
	default:
		err = usagef("unknown command %q; commands: serve, connect, bridge, bench, doctor, version, help", args[0])
	}
	return a.exitCode(err)
}

func (a *App) exitCode(err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, errFlagHelp) {
		return 0
	}
	fmt.Fprintf(a.Stderr, "%s: %v\n", a.Name, explain(err))
	var ue usageError
	var unknown *core.UnknownNameError
	var opt *core.OptionError
	if errors.As(err, &ue) || errors.As(err, &unknown) || errors.As(err, &opt) {
		return 2
	}
	return 1
}

// resolve turns an address (and --transport) into a target, with the
// transport options given as flags. Every failure is a usage error.
func (a *App) resolve(address, transport string, opts *optionFlags) (core.Target, error) {
	r := core.Resolver{Transports: a.Transports, Transport: transport}
	if opts != nil {
		r.Options = opts.values()
	}
	tgt, err := r.Resolve(address)
	if err != nil {
		return core.Target{}, usageError{err}
	}
	return tgt, nil
}

func (a *App) lookupCodec(name string) (core.Codec, error) {
	if name == "" {
		return nil, usagef("no codec given and no default codec: give --codec (%s)", joinNames(a.Codecs.Names()))
	}
	c, err := a.Codecs.Lookup(name)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

func (a *App) usage(w io.Writer) {
	fmt.Fprintf(w, `%[1]s carries messages between processes, over any registered transport.

Usage:
  %[1]s serve   [flags]   run a hub: every message a client sends reaches every other client
  %[1]s connect [flags]   chat with a hub in a terminal, or pipe standard input and output through it
  %[1]s bridge  [flags] FROM TO   connect each connection accepted on FROM to a new one dialed to TO
  %[1]s bench   [flags]   measure a link through a hub: throughput, round-trip latency, fan-out
  %[1]s doctor  [flags]   say what this machine supports for each transport; dials nothing
  %[1]s version
  %[1]s help

With no flags both use %[2]s and the %[5]s codec.
Run "%[1]s serve -h" or "%[1]s connect -h" for the flags.
Transports: %[3]s. Codecs: %[4]s.
`, a.Name, a.defaultEndpoint(), joinNames(a.Transports.Names()), joinNames(a.Codecs.Names()), orNone(a.Codecs.DefaultName()))
}
