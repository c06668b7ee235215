package proctest

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// EchoUnix serves a unix socket at path that sends back what it reads and,
// at the end of its input, ends its output: a half-close, as a
// request-response service ends. It stops when the test ends.
func EchoUnix(t testing.TB, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.UnixConn).CloseWrite()
			}()
		}
	}()
}

// NotifySocket is a service manager's end of NOTIFY_SOCKET: it collects the
// datagrams a service sends there.
type NotifySocket struct {
	// Path is the socket's path, the value for NOTIFY_SOCKET.
	Path string
	msgs chan string
}

// ListenNotify listens for notifications at path until the test ends.
func ListenNotify(t testing.TB, path string) *NotifySocket {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := &NotifySocket{Path: path, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// Await waits up to 10 s for a datagram holding every one of wants, failing
// the test with what did arrive.
func (n *NotifySocket) Await(t testing.TB, wants ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case m := <-n.msgs:
			seen = append(seen, m)
			ok := true
			for _, w := range wants {
				ok = ok && strings.Contains(m, w)
			}
			if ok {
				return
			}
		case <-deadline:
			t.Fatalf("no notification with %q within 10s; got %q", wants, seen)
		}
	}
}
