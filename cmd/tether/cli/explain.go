package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
)

// explain adds what to do next to the errors a user meets most.
func explain(err error) error {
	var op *net.OpError
	addr := ""
	if errors.As(err, &op) && op.Addr != nil {
		addr = op.Addr.String()
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\nnobody is listening at %s: start a hub with \"tether serve --addr %s\" or check the address", err, orThere(addr), orThere(addr))
	case errors.Is(err, syscall.ENOENT) && op != nil && op.Op == "dial":
		return fmt.Errorf("%w\nno socket at %s: start a hub with \"tether serve\" (same --addr) first", err, orThere(addr))
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w\nthe socket or its directory is not open to you: the hub's owner can widen it with \"tether serve --socket-mode 0660\"", err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w\nthe address is in use: stop the program using it or choose another --addr", err)
	}
	return err
}

func orThere(addr string) string {
	if addr == "" {
		return "that address"
	}
	return addr
}
