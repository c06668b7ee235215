//go:build !unix

package unix

import (
	"context"
	"net"
	"os"
)

// fileModes says whether socket files have modes and groups here: not on
// this system, where a socket file's access follows its directory's.
const fileModes = false

func listenOwnerOnly(ctx context.Context, path string, _ os.FileMode) (*net.UnixListener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	return l.(*net.UnixListener), nil
}
