package cli

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/tetherkit/tether/core"
)

var errFlagHelp = errors.New("help shown")

// common holds the flags serve and connect share.
type common struct {
	transport string
	addr      string
	codec     string
	maxFrame  byteSize
	logLevel  string
	logJSON   bool
}

func (c *common) register(fs *flag.FlagSet, a *App) {
	fs.StringVar(&c.transport, "transport", "", "transport: "+joinNames(a.Transports.Names())+" (default: from the address, else unix)")
	fs.StringVar(&c.addr, "addr", "", "address in the transport's form or as scheme://address (default "+defaultSocketPath()+")")
	fs.StringVar(&c.codec, "codec", "line", "message framing: "+joinNames(a.Codecs.Names()))
	c.maxFrame = core.DefaultMaxFrame
	fs.Var(&c.maxFrame, "max-frame", "largest message in bytes (suffixes KiB, MiB)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level on standard error: trace, debug, info, warn, error, off")
	fs.BoolVar(&c.logJSON, "log-json", false, "write logs as JSON lines")
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

// resolve turns an address flag (and the --transport flag) into a target.
// Without a scheme or --transport, an address that looks like host:port is
// tcp and anything else is a unix socket path.
func (a *App) resolve(address, transport string) (core.Target, error) {
	if address == "" {
		address = defaultSocketPath()
		if transport == "" {
			transport = "unix"
		}
	}
	ep, err := core.ParseEndpoint(address)
	if err != nil {
		return core.Target{}, usageError{err}
	}
	if ep.Transport == "" && transport == "" {
		transport = guessTransport(ep.Address)
	}
	tgt, err := core.Resolve(a.Transports, address, transport)
	if err != nil {
		var unknown *core.UnknownNameError
		if errors.As(err, &unknown) {
			return core.Target{}, err
		}
		return core.Target{}, usageError{err}
	}
	return tgt, nil
}

func guessTransport(address string) string {
	if strings.HasPrefix(address, "@") || strings.Contains(address, "/") {
		return "unix"
	}
	if _, port, err := net.SplitHostPort(address); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err == nil {
			return "tcp"
		}
	}
	return "unix"
}

func (a *App) lookupCodec(name string) (core.Codec, error) {
	return a.Codecs.Lookup(name)
}

// defaultSocketPath is a per-user socket path that needs no set-up:
// $XDG_RUNTIME_DIR/tether.sock, or tether-UID/tether.sock in the temporary
// directory.
func defaultSocketPath() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return filepath.Join(dir, "tether.sock")
		}
	}
	return filepath.Join(privateTempDir(), "tether.sock")
}

func privateTempDir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("tether-%d", os.Getuid()))
}

// prepareSocketDir creates the private directory of the default socket path
// when it is needed, and refuses one that another user could tamper with.
func prepareSocketDir(path string) error {
	dir := filepath.Dir(path)
	if dir != privateTempDir() {
		return nil
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating %s for the default socket: %w (choose another place with --addr)", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByMe(fi) {
		return fmt.Errorf("%s is not a private directory of yours (mode %v); remove it or give --addr", dir, fi.Mode())
	}
	return nil
}

// byteSize is a flag value in bytes with optional KiB/MiB/GiB suffixes.
type byteSize int

func (b *byteSize) String() string { return strconv.Itoa(int(*b)) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n*mult > 1<<31 {
		return fmt.Errorf("want a size from 1 byte to 2GiB, such as 65536 or 4MiB")
	}
	*b = byteSize(n * mult)
	return nil
}

// fileMode is an octal permission flag value.
type fileMode os.FileMode

func (m *fileMode) String() string { return fmt.Sprintf("%#o", os.FileMode(*m)) }

func (m *fileMode) Set(s string) error {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("want an octal mode such as 0600 or 0660")
	}
	*m = fileMode(n)
	return nil
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

func stdinIsTerminal() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
