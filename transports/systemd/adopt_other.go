//go:build !linux

package systemd

import (
	"fmt"
	"net"
	"os"
)

// adopt serves a passed socket with its family's transport. The listener
// holds its own copy of the descriptor; f stays the caller's.
func (t Transport) adopt(f *os.File) (net.Listener, error) {
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	switch l := l.(type) {
	case *net.UnixListener:
		return t.Unix.Wrap(l), nil
	case *net.TCPListener:
		return t.TCP.Wrap(l), nil
	}
	l.Close()
	return nil, fmt.Errorf("a socket of a family tether does not serve")
}
