package stdio_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/stdio"
)

// streams returns two transports over crossed pipes: what one writes, the
// other reads, as a process and whoever holds its standard streams.
func streams(t *testing.T) (a, b stdio.Transport) {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r1.Close(); w1.Close(); r2.Close(); w2.Close() })
	return stdio.Transport{In: r1, Out: w2}, stdio.Transport{In: r2, Out: w1}
}

// The connection behaves as a net.Conn should (nettest's checks: both ways,
// concurrency, deadlines, closing), over real pipes. The rest of
// transporttest needs a listener two dialers meet at, which one process's
// standard streams are not.
func TestNettest(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := streams(t)
		c1, err = a.Dial(context.Background(), "")
		if err != nil {
			return nil, nil, nil, err
		}
		c2, err = b.Dial(context.Background(), "")
		if err != nil {
			return nil, nil, nil, err
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestOneConnectionThenDone: a listener gives the streams once; the next
// Accept waits for that connection to end and says net.ErrClosed.
func TestOneConnectionThenDone(t *testing.T) {
	a, b := streams(t)
	l, err := a.Listen(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Dial(context.Background(), ""); err == nil {
		t.Fatal("a second connection over the same streams was given")
	}
	next := make(chan error, 1)
	go func() { _, err := l.Accept(); next <- err }()
	peer, err := b.Dial(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	peer.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if got, err := io.ReadAll(peer); err != nil || len(got) != 0 {
		t.Fatalf("after CloseWrite the other side reads %q, %v; want the end", got, err)
	}
	select {
	case err := <-next:
		t.Fatalf("the second Accept returned %v while the connection was open", err)
	case <-time.After(50 * time.Millisecond): // a window in which it must not return
	}
	c.Close()
	if err := testwait.Recv(t, "the second Accept to end", testwait.Timeout, next); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Accept: %v, want net.ErrClosed", err)
	}
}

func TestParseAddr(t *testing.T) {
	if _, err := (stdio.Transport{}).ParseAddr("x"); err == nil {
		t.Fatal("stdio took an address")
	}
	if a, err := (stdio.Transport{}).ParseAddr(""); err != nil || a.Network() != "stdio" {
		t.Fatalf("ParseAddr(\"\") = %v, %v", a, err)
	}
}

func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &stdio.Conn{})
	zerotest.Calls(t, &stdio.Listener{})
}
