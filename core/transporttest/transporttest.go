// Package transporttest is the conformance suite every [core.Transport] runs,
// over real connections. A transport package's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, transporttest.Config{
//			Transport: mytransport.Transport{},
//			Address:   func(t *testing.T) string { return "..." },
//		})
//	}
//
// What it checks (a connection's handshake, [core.Handshaker], runs on the
// accepting side first, as the hub runs it):
//   - Nettest: golang.org/x/net/nettest's connection tests: reads and writes
//     both ways, concurrent use, deadlines, closing (skip with
//     NoTimeoutRecovery for connections that are unusable after a write
//     timeout, saying why).
//   - Echo: a megabyte round trip, byte-exact; the listener and the peer
//     report addresses.
//   - ManyConnections: twenty connections at once, each its own stream.
//   - HalfClose: after CloseWrite the other side reads everything, then EOF,
//     and can still answer. A connection without CloseWrite fails this
//     unless NoHalfClose says why the transport cannot half-close.
//   - CloseUnblocksAccept: Close makes Accept return net.ErrClosed.
//   - DialCancelled, DialNobody: a cancelled context and an address nobody
//     listens on make Dial fail.
//   - ParseAddr: a listen address parses, and its String parses back to
//     the same; BadAddresses are refused.
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/tetherkit/tether/core"
)

// Config says how to exercise a transport.
type Config struct {
	// Transport is the transport under test.
	Transport core.Transport
	// Address returns a fresh address to listen on, in the transport's form;
	// nil means the transport's own [core.Ephemeral] address.
	Address func(t *testing.T) string
	// DialAddress returns the address to dial to reach l; nil means
	// l.Addr().String().
	DialAddress func(l net.Listener) string
	// Unreachable is an address nobody listens on, for the failed-dial test;
	// "" skips that test.
	Unreachable string
	// BadAddresses are addresses ParseAddr must refuse.
	BadAddresses []string
	// NoTimeoutRecovery, with a reason, skips nettest's tests that expect a
	// connection to stay usable after a deadline passes mid-I/O; crypto/tls
	// connections, for one, are unusable after a write timeout by design.
	NoTimeoutRecovery string
	// NoHalfClose, with a reason, says the transport's connections have no
	// CloseWrite; without it a connection lacking CloseWrite fails.
	NoHalfClose string
	// Listen, when set, listens in place of the transport, for a transport
	// that only dials (exec dials a command that connects to this
	// listener; DialAddress then names that command).
	Listen func(ctx context.Context, address string) (net.Listener, error)
}

func (c Config) listen(ctx context.Context, address string) (net.Listener, error) {
	if c.Listen != nil {
		return c.Listen(ctx, address)
	}
	return c.Transport.Listen(ctx, address)
}

func (c Config) address(t *testing.T) string {
	t.Helper()
	if c.Address != nil {
		return c.Address(t)
	}
	e, ok := c.Transport.(core.Ephemeral)
	if !ok {
		t.Fatalf("Config.Address is nil and %s has no EphemeralAddress: say where to listen", c.Transport.Name())
	}
	addr, release, err := e.EphemeralAddress()
	if err != nil {
		t.Fatalf("EphemeralAddress: %v", err)
	}
	t.Cleanup(release)
	return addr
}

func (c Config) dialAddr(l net.Listener) string {
	if c.DialAddress != nil {
		return c.DialAddress(l)
	}
	return l.Addr().String()
}

// Run runs the suite.
func Run(t *testing.T, c Config) {
	t.Helper()
	t.Run("Nettest", func(t *testing.T) {
		if c.NoTimeoutRecovery != "" {
			t.Skip(c.NoTimeoutRecovery)
		}
		nettest.TestConn(t, makePipe(t, c))
	})
	t.Run("Echo", func(t *testing.T) { testEcho(t, c) })
	t.Run("ManyConnections", func(t *testing.T) { testMany(t, c) })
	t.Run("HalfClose", func(t *testing.T) { testHalfClose(t, c) })
	t.Run("CloseUnblocksAccept", func(t *testing.T) { testCloseAccept(t, c) })
	t.Run("DialCancelled", func(t *testing.T) { testDialCancelled(t, c) })
	t.Run("DialNobody", func(t *testing.T) { testDialNobody(t, c) })
	t.Run("ParseAddr", func(t *testing.T) { testParseAddr(t, c) })
}

// Pair listens, dials and accepts, returning the two ends and a cleanup.
func Pair(t testing.TB, c Config, addr string) (dialed, accepted net.Conn, l net.Listener) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := c.listen(ctx, addr)
	if err != nil {
		t.Fatalf("Listen(%q): %v", addr, err)
	}
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() { a, err := accept(ctx, l); ch <- result{a, err} }()
	d, err := c.Transport.Dial(ctx, c.dialAddr(l))
	if err != nil {
		l.Close()
		t.Fatalf("Dial(%q): %v", c.dialAddr(l), err)
	}
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r.err = fmt.Errorf("no connection accepted within 10s: %w", ctx.Err())
	}
	if r.err != nil {
		d.Close()
		l.Close()
		t.Fatalf("Accept: %v", r.err)
	}
	return d, r.c, l
}

// accept accepts one connection and, like the hub, runs its handshake
// (TLS) on the accepting side, so that a Dial that completes its handshake
// can return.
func accept(ctx context.Context, l net.Listener) (net.Conn, error) {
	a, err := l.Accept()
	if err != nil {
		return nil, err
	}
	if hs, ok := a.(core.Handshaker); ok {
		if err := hs.HandshakeContext(ctx); err != nil {
			a.Close()
			return nil, err
		}
	}
	return a, nil
}

func makePipe(t *testing.T, c Config) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		d, a, l := Pair(t, c, c.address(t))
		return d, a, func() { d.Close(); a.Close(); l.Close() }, nil
	}
}

func testEcho(t *testing.T, c Config) {
	d, a, l := Pair(t, c, c.address(t))
	t.Cleanup(func() { d.Close(); a.Close(); l.Close() })
	go io.Copy(onlyWriter{a}, onlyReader{a})
	msg := bytes.Repeat([]byte("0123456789"), 100000)
	go d.Write(msg)
	got := make([]byte, len(msg))
	d.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(d, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("echoed bytes differ from the bytes sent")
	}
	if l.Addr() == nil || l.Addr().Network() == "" || a.RemoteAddr() == nil {
		t.Fatalf("listener address %v and peer address %v must be set", l.Addr(), a.RemoteAddr())
	}
}

// closeWriter is the optional half-close ability (net.TCPConn, net.UnixConn).
type closeWriter interface{ CloseWrite() error }

func testHalfClose(t *testing.T, c Config) {
	d, a, l := Pair(t, c, c.address(t))
	t.Cleanup(func() { d.Close(); a.Close(); l.Close() })
	cw, ok := d.(closeWriter)
	if !ok {
		if c.NoHalfClose != "" {
			t.Skip(c.NoHalfClose)
		}
		t.Fatalf("%T has no CloseWrite: a peer cannot end its sending side and still read (the hub relies on it for a graceful end); add CloseWrite, or set Config.NoHalfClose to say why the transport cannot", d)
	}
	if _, err := d.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(a)
	if err != nil || string(got) != "last words" {
		t.Fatalf("after the peer's CloseWrite: read %q, %v; want \"last words\" then EOF", got, err)
	}
	if _, err := a.Write([]byte("reply")); err != nil {
		t.Fatalf("writing back after the peer's half-close: %v", err)
	}
	buf := make([]byte, 5)
	d.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(d, buf); err != nil || string(buf) != "reply" {
		t.Fatalf("the half-closed side must still read: %q, %v", buf, err)
	}
}

func testCloseAccept(t *testing.T, c Config) {
	l, err := c.listen(context.Background(), c.address(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	l.Close() // Accept may be blocked already or not yet: either way it must return net.ErrClosed
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked 5 s after Close")
	}
}

func testDialCancelled(t *testing.T, c Config) {
	l, err := c.listen(context.Background(), c.address(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	conn, err := c.Transport.Dial(ctx, c.dialAddr(l))
	if err == nil {
		conn.Close()
		t.Fatal("Dial with a cancelled context succeeded")
	}
}

func testDialNobody(t *testing.T, c Config) {
	if c.Unreachable == "" {
		t.Skip("no unreachable address configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Transport.Dial(ctx, c.Unreachable)
	if err == nil {
		conn.Close()
		t.Fatalf("Dial(%q) succeeded, want an error", c.Unreachable)
	}
}

func testParseAddr(t *testing.T, c Config) {
	addr := c.address(t)
	a, err := c.Transport.ParseAddr(addr)
	if err != nil {
		t.Fatalf("ParseAddr(%q): %v", addr, err)
	}
	if a.Network() == "" || a.String() == "" {
		t.Fatalf("ParseAddr(%q) = %#v: Network and String must be set", addr, a)
	}
	again, err := c.Transport.ParseAddr(a.String())
	if err != nil || again.String() != a.String() {
		t.Fatalf("ParseAddr(String()) round trip: %v, %v; want %q", again, err, a.String())
	}
	for _, bad := range c.BadAddresses {
		if _, err := c.Transport.ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) succeeded, want an error", bad)
		}
	}
}

// testMany runs twenty connections at once, each echoing its own stream.
func testMany(t *testing.T, c Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := c.listen(ctx, c.address(t))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			a, err := accept(ctx, l)
			if err != nil {
				return
			}
			go func() { defer a.Close(); io.Copy(onlyWriter{a}, onlyReader{a}) }()
		}
	}()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := c.Transport.Dial(ctx, c.dialAddr(l))
			if err != nil {
				errs <- fmt.Errorf("dial %d: %w", i, err)
				return
			}
			defer d.Close()
			msg := bytes.Repeat([]byte(fmt.Sprintf("stream %d;", i)), 2000)
			go d.Write(msg)
			got := make([]byte, len(msg))
			d.SetReadDeadline(time.Now().Add(15 * time.Second))
			if _, err := io.ReadFull(d, got); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("connection %d: echo differs or failed: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// onlyReader and onlyWriter hide every method but Read and Write, so that
// io.Copy goes through the connection's own Read and Write, not a ReadFrom
// or WriteTo it may have inherited from a socket it embeds.
type (
	onlyReader struct{ io.Reader }
	onlyWriter struct{ io.Writer }
)
