// Command customtransport is the tether command line with one more
// transport, "room", defined here and not in tether itself: a room is a name
// ("lobby"), and its socket lives in a per-user directory, so people say
// "room://lobby" instead of a path.
//
//	go run ./examples/customtransport serve --addr room://lobby
//	echo hi | go run ./examples/customtransport connect --addr room://lobby
//
// Everything else (flags, codecs, the hub, the chat) comes from tether.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/tetherkit/tether/cmd/tether/cli"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/unix"
)

// Room is a transport whose addresses are room names. It delegates to the
// unix transport for the sockets, so it inherits owner-only permissions and
// stale-socket care.
type Room struct {
	// Dir holds the rooms' sockets; "" means $TETHER_ROOMS, else a per-user
	// directory under the temporary directory.
	Dir string
}

// Addr is a room name.
type Addr string

// Network returns "room".
func (Addr) Network() string { return "room" }

// String returns the room name.
func (a Addr) String() string { return string(a) }

// Name returns "room".
func (Room) Name() string { return "room" }

// ParseAddr accepts names of 1 to 32 letters, digits, '-' and '_'.
func (Room) ParseAddr(address string) (net.Addr, error) {
	if len(address) == 0 || len(address) > 32 {
		return nil, fmt.Errorf("room: name %q must be 1 to 32 characters", address)
	}
	for _, c := range address {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("room: name %q may hold only letters, digits, '-' and '_'", address)
		}
	}
	return Addr(address), nil
}

func (r Room) path(address string) (string, error) {
	if _, err := r.ParseAddr(address); err != nil {
		return "", err
	}
	dir := r.Dir
	if dir == "" {
		dir = os.Getenv("TETHER_ROOMS")
	}
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("tether-rooms-%d", os.Getuid()))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, address+".sock"), nil
}

// Listen opens the room.
func (r Room) Listen(ctx context.Context, address string) (net.Listener, error) {
	p, err := r.path(address)
	if err != nil {
		return nil, err
	}
	return unix.Transport{}.Listen(ctx, p)
}

// Dial enters the room.
func (r Room) Dial(ctx context.Context, address string) (net.Conn, error) {
	p, err := r.path(address)
	if err != nil {
		return nil, err
	}
	return unix.Transport{}.Dial(ctx, p)
}

func main() {
	core.Transports.Register(Room{})
	os.Exit(cli.Main())
}
