package unix_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/transports/unix"
)

// socketPath returns a short fresh path (t.TempDir can exceed the 107-byte limit).
func socketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "tu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

var abstractSeq atomic.Int64

func TestConformance(t *testing.T) {
	transporttest.Run(t, transporttest.Config{
		Transport:    unix.Transport{},
		Address:      socketPath,
		Unreachable:  "/nonexistent/tether.sock",
		BadAddresses: []string{"", "@", "a\x00b", "/" + strings.Repeat("x", 107)},
	})
}

func TestConformanceAbstract(t *testing.T) {
	transporttest.Run(t, transporttest.Config{
		Transport: unix.Transport{},
		Address: func(t *testing.T) string {
			return fmt.Sprintf("@tether-test-%d-%d", os.Getpid(), abstractSeq.Add(1))
		},
	})
}

func TestSocketIsOwnerOnly(t *testing.T) {
	path := socketPath(t)
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("socket mode %o, want 600", got)
	}
	if err := l.(*unix.Listener).SetMode(0o660); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(path)
	if got := fi.Mode().Perm(); got != 0o660 {
		t.Fatalf("after SetMode: mode %o, want 660", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("listen left %d entries in the directory, want only the socket", len(entries))
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := socketPath(t)
	// Make a stale socket: bind, then close without unlinking.
	old, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the socket file behind: %v", err)
	}
}

func TestLiveSocketNotTaken(t *testing.T) {
	path := socketPath(t)
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = unix.Transport{}.Listen(context.Background(), path)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "already listening") {
		t.Fatalf("second Listen: got %v, want EADDRINUSE saying a server is already listening", err)
	}
	// The first server still works.
	c, err := unix.Transport{}.Dial(context.Background(), path)
	if err != nil {
		t.Fatalf("first server lost its socket: %v", err)
	}
	c.Close()
}

func TestRegularFileNotReplaced(t *testing.T) {
	path := socketPath(t)
	os.WriteFile(path, []byte("precious"), 0o644)
	_, err := unix.Transport{}.Listen(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("got %v, want a refusal naming a non-socket file", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatal("the regular file was changed")
	}
}

func TestCloseKeepsReplacement(t *testing.T) {
	path := socketPath(t)
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	l2, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	l.Close() // must not remove l2's socket
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing the old listener removed the new server's socket: %v", err)
	}
}

func TestPathTooLong(t *testing.T) {
	long := "/tmp/" + strings.Repeat("x", 120)
	_, err := unix.Transport{}.Listen(context.Background(), long)
	var tl *unix.PathTooLongError
	if !errors.As(err, &tl) || tl.Limit != unix.MaxPathLen || !strings.Contains(err.Error(), "107") {
		t.Fatalf("got %v, want PathTooLongError naming the limit 107", err)
	}
}

func TestPeerCredentials(t *testing.T) {
	path := socketPath(t)
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := unix.Transport{}.Dial(context.Background(), path)
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pa, ok := c.RemoteAddr().(*unix.PeerAddr)
	if !ok {
		t.Fatalf("RemoteAddr is %T, want *unix.PeerAddr", c.RemoteAddr())
	}
	if int(pa.PID) != os.Getpid() || int(pa.UID) != os.Getuid() {
		t.Fatalf("peer %v, want pid %d uid %d", pa, os.Getpid(), os.Getuid())
	}
}
