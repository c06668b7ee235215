package unix_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/tetherkit/tether/core"
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
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("listen left %d entries in the directory, want only the socket", len(entries))
	}
}

// TestNoWiderModeAtAnyMoment races a stat loop against the bind: the socket
// file is never seen wider than asked, nor with another group than asked
// while group bits are set.
func TestNoWiderModeAtAnyMoment(t *testing.T) {
	gid := os.Getgid()
	for _, tt := range []struct {
		opts url.Values
		want os.FileMode
	}{
		{nil, 0o600},
		{url.Values{"socket-mode": {"0660"}}, 0o660},
		{url.Values{"socket-mode": {"0660"}, "socket-group": {strconv.Itoa(gid)}}, 0o660},
		{url.Values{"socket-mode": {"0640"}}, 0o640},
	} {
		tr, err := unix.Transport{}.Configure(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			path := socketPath(t)
			stop := make(chan struct{})
			seen := make(chan []os.FileMode, 1)
			go func() {
				var modes []os.FileMode
				for {
					select {
					case <-stop:
						seen <- modes
						return
					default:
					}
					if fi, err := os.Lstat(path); err == nil {
						modes = append(modes, fi.Mode().Perm())
					}
				}
			}()
			l, err := tr.Listen(context.Background(), path)
			close(stop)
			modes := <-seen
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Lstat(path)
			l.Close()
			if fi.Mode().Perm() != tt.want {
				t.Fatalf("%v: final mode %o, want %o", tt.opts, fi.Mode().Perm(), tt.want)
			}
			for _, m := range modes {
				if m&^tt.want != 0 {
					t.Fatalf("%v: the socket file was seen with mode %o, wider than %o", tt.opts, m, tt.want)
				}
			}
		}
	}
}

// TestAddressIsThePathGiven: the kernel, and so ss, lsof and a client's
// RemoteAddr, know the socket by the path the listener was given.
func TestAddressIsThePathGiven(t *testing.T) {
	path := socketPath(t)
	l, err := unix.Transport{}.Listen(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := unix.Transport{}.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != path {
		t.Fatalf("client's RemoteAddr is %q, want %q", got, path)
	}
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Skipf("no /proc/net/unix here: %v", err)
	}
	if !strings.Contains(string(table), " "+path+"\n") {
		t.Fatalf("/proc/net/unix does not list %s", path)
	}
}

func TestOptions(t *testing.T) {
	for _, tt := range []struct {
		opts url.Values
		err  string
	}{
		{url.Values{"socket-mode": {"999"}}, "octal"},
		{url.Values{"socket-mode": {"0"}}, "octal"},
		{url.Values{"socket-group": {"no-such-group-here"}}, "socket-group"},
		{url.Values{"allow-uid": {"x"}}, "allow-uid"},
		{url.Values{"allow-gid": {"-1"}}, "allow-gid"},
		{url.Values{"allow-net": {"::1"}}, "valid: allow-gid, allow-uid, socket-group, socket-mode"},
		{url.Values{"socket-mode": {"0600", "0660"}}, "given 2 times"},
	} {
		if _, err := (unix.Transport{}).Configure(tt.opts); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("Configure(%v): got %v, want an error containing %q", tt.opts, err, tt.err)
		}
	}
	if _, err := (unix.Transport{Mode: 0o660}).Listen(context.Background(), "@tether-abstract-mode"); err == nil || !strings.Contains(err.Error(), "abstract") {
		t.Errorf("a mode on an abstract socket: got %v", err)
	}
	if _, err := (unix.Transport{}).ParseEndpointAddr("tmp/x.sock"); err == nil || !strings.Contains(err.Error(), "unix:///tmp/x.sock") {
		t.Errorf("unix://tmp/x.sock: got %v, want a refusal showing the absolute form", err)
	}
	for _, ok := range []string{"/tmp/x.sock", "./x.sock", "../x.sock", "@abs"} {
		if _, err := (unix.Transport{}).ParseEndpointAddr(ok); err != nil {
			t.Errorf("unix://%s: %v", ok, err)
		}
	}
}

// TestAllowUID: the listener admits only the users and groups named.
func TestAllowUID(t *testing.T) {
	me := strconv.Itoa(os.Getuid())
	for _, tt := range []struct {
		opts  url.Values
		admit bool
	}{
		{url.Values{"allow-uid": {me}}, true},
		{url.Values{"allow-uid": {"4242"}}, false},
		{url.Values{"allow-uid": {"4242"}, "allow-gid": {strconv.Itoa(os.Getgid())}}, true},
	} {
		tr, err := unix.Transport{}.Configure(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		path := socketPath(t)
		l, err := tr.Listen(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := tr.Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		err = l.(core.Admitter).Admit(a)
		if (err == nil) != tt.admit {
			t.Errorf("%v: Admit = %v, want admitted %v", tt.opts, err, tt.admit)
		}
		if err != nil && !strings.Contains(err.Error(), "is not allowed (allow-uid 4242") {
			t.Errorf("refusal %q should name the uid and the rule", err)
		}
		c.Close()
		a.Close()
		l.Close()
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
