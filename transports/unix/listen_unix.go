//go:build unix && !linux

package unix

import (
	"context"
	"net"
	"os"
	"sync"
	"syscall"
)

// fileModes says whether socket files have modes and groups here.
const fileModes = true

// umaskMu serialises the umask changes of concurrent listens.
var umaskMu sync.Mutex

// listenOwnerOnly binds and listens at path with the socket file created
// with at most mode: bind creates it with the process umask applied, so the
// umask is narrowed to mode for the bind and restored after. Files other
// goroutines create in that instant get the narrower mask, never a wider one.
func listenOwnerOnly(ctx context.Context, path string, mode os.FileMode) (*net.UnixListener, error) {
	umaskMu.Lock()
	old := syscall.Umask(int(0o777 &^ mode))
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	syscall.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, err
	}
	return l.(*net.UnixListener), nil
}
