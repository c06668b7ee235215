package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/tetherkit/tether/core"
)

// explain adds what to do next, in the command line's terms, to the errors
// a user meets most.
func explain(err error) error {
	var op *net.OpError
	addr := ""
	if errors.As(err, &op) && op.Addr != nil {
		addr = op.Addr.String()
	}
	var opt *core.OptionError
	switch {
	case errors.As(err, &opt):
		return fmt.Errorf("%w\nset it with --%s, or as ?%s=VALUE in the endpoint", err, opt.Option, opt.Option)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\nnobody is listening at %s: start a hub with \"tether serve --addr %s\" or check the address", err, orThere(addr), orThere(addr))
	case errors.Is(err, syscall.ENOENT) && op != nil && op.Op == "dial":
		return fmt.Errorf("%w\nno socket at %s: start a hub with \"tether serve\" (same --addr) first", err, orThere(addr))
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w\nthe address is not open to you: its owner can widen it (see the transport's options in \"tether serve -h\")", err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w\nthe address is in use: stop the program using it or choose another --addr", err)
	case errors.Is(err, errors.ErrUnsupported):
		return fmt.Errorf("%w\n\"tether doctor\" says what this machine supports", err)
	}
	if h := flagHint(err); h != "" {
		return fmt.Errorf("%w\n%s", err, h[2:len(h)-1])
	}
	return err
}

// flagHint names the flag that governs a limit an error reports, as
// " (hint)", or "".
func flagHint(err error) string {
	var tooLarge *core.FrameTooLargeError
	switch {
	case errors.As(err, &tooLarge) && tooLarge.PeerCodec != "":
		return fmt.Sprintf(" (is the peer using --codec %s?)", tooLarge.PeerCodec)
	case errors.Is(err, core.ErrFrameTooLarge):
		return " (--max-frame sets the limit)"
	case errors.Is(err, core.ErrReadBudget):
		return " (raise --read-budget or lower --max-frame)"
	case errors.Is(err, core.ErrStalled):
		return " (--stall-timeout sets how long)"
	case errors.Is(err, core.ErrIdleTimeout):
		return " (--idle-timeout)"
	case errors.Is(err, core.ErrWriteTimeout):
		return " (--write-timeout)"
	case errors.Is(err, core.ErrHandshakeTimeout):
		return " (--handshake-timeout)"
	}
	return ""
}

func orThere(addr string) string {
	if addr == "" {
		return "that address"
	}
	return addr
}
