package cli

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"
	"os"

	"github.com/tetherkit/tether/core"
)

var errFlagHelp = errors.New("help shown")

// common holds the flags every command that talks shares.
type common struct {
	transport string
	addr      string
	codec     string
	maxFrame  sizeFlag
	logLevel  string
	logJSON   bool
}

func (c *common) register(fs *flag.FlagSet, a *App) {
	fs.StringVar(&c.transport, "transport", "", "transport: "+joinNames(a.Transports.Names())+" (default: from the address, else "+orNone(a.Transports.DefaultName())+")")
	fs.StringVar(&c.addr, "addr", "", "address in the transport's form or as scheme://address[?options] (default "+a.defaultEndpoint()+")")
	fs.StringVar(&c.codec, "codec", a.Codecs.DefaultName(), "message framing: "+joinNames(a.Codecs.Names()))
	c.maxFrame = sizeFlag{v: core.DefaultMaxFrame, min: 1, max: maxFrameLimit}
	fs.Var(&c.maxFrame, "max-frame", "largest message (suffixes KiB, MiB, GiB; at most 1GiB)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level on standard error: trace, debug, info, warn, error, off")
	fs.BoolVar(&c.logJSON, "log-json", false, "write logs as JSON lines")
}

// maxFrameLimit is the largest --max-frame: a frame is held in memory whole.
const maxFrameLimit = 1 << 30

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (a *App) newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(a.Name+" "+name, flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.Stderr, "Usage: %s %s [flags]\n\n%s\n\nFlags:\n", a.Name, name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errFlagHelp
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (flags go before it? addresses go in --addr)", fs.Arg(0))
	}
	return nil
}

func (a *App) logger(c *common) (hclog.Logger, error) {
	level := hclog.LevelFromString(c.logLevel)
	if level == hclog.NoLevel {
		return nil, usagef("unknown --log-level %q; valid: trace, debug, info, warn, error, off", c.logLevel)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       a.Name,
		Level:      level,
		JSONFormat: c.logJSON,
		Output:     a.Stderr,
	}), nil
}

// defaultEndpoint names what an empty --addr means, for help texts.
func (a *App) defaultEndpoint() string {
	t, err := a.Transports.Default()
	if err != nil {
		return "none: give one"
	}
	if d, ok := t.(core.DefaultAddresser); ok {
		return core.Endpoint{Transport: t.Name(), Address: d.DefaultAddress()}.String()
	}
	return "none for " + t.Name() + ": give one"
}

// sizeFlag is a size in bytes, written as a number with an optional suffix
// (B, K or KiB, M or MiB, G or GiB), from min to max.
type sizeFlag struct {
	v, min, max int64
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}

func (f *sizeFlag) String() string {
	if f == nil {
		return "0"
	}
	for _, u := range sizeUnits[:3] {
		if f.v >= u.mult && f.v%u.mult == 0 {
			return strconv.FormatInt(f.v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(f.v, 10)
}

func (f *sizeFlag) Set(s string) error {
	text, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSuffix(text, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult || n*mult < f.min || n*mult > f.max {
		return fmt.Errorf("want a size from %s to %s, such as 65536 or 4MiB", sizeText(f.min), sizeText(f.max))
	}
	f.v = n * mult
	return nil
}

func sizeText(n int64) string { f := sizeFlag{v: n}; return f.String() }

// durationFlag is a duration from min to max; zero means what the flag's
// help says (or is refused when min is above it).
type durationFlag struct {
	v, min, max time.Duration
}

func (f *durationFlag) String() string {
	if f == nil {
		return "0s"
	}
	return f.v.String()
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < f.min || d > f.max {
		if f.min > 0 {
			return fmt.Errorf("want a duration from %v to %v, such as 500ms or 10s", f.min, f.max)
		}
		return fmt.Errorf("want a duration from 0 to %v, such as 500ms or 10s", f.max)
	}
	f.v = d
	return nil
}

// countFlag is a whole number from min to max.
type countFlag struct {
	v, min, max int
}

func (f *countFlag) String() string {
	if f == nil {
		return "0"
	}
	return strconv.Itoa(f.v)
}

func (f *countFlag) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < int64(f.min) || n > int64(f.max) {
		return fmt.Errorf("want a whole number from %d to %d", f.min, f.max)
	}
	f.v = int(n)
	return nil
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

// stdinIsTerminal asks through SyscallConn, not Fd: Fd would switch
// standard input to blocking mode, and every read of it would then hold an
// OS thread instead of waiting in the runtime's poller.
func stdinIsTerminal() bool {
	raw, err := os.Stdin.SyscallConn()
	if err != nil {
		return false
	}
	tty := false
	raw.Control(func(fd uintptr) { tty = term.IsTerminal(int(fd)) })
	return tty
}
