package core_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
)

// echoServer answers each connection by sending back everything it reads,
// and half-closes when its peer does; it returns its address.
func echoServer(t *testing.T, tr core.Transport) string {
	t.Helper()
	l, err := tr.Listen(context.Background(), listenAddr(t, tr))
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
				io.Copy(onlyWriter{c}, onlyReader{c})
				c.(interface{ CloseWrite() error }).CloseWrite()
				io.Copy(io.Discard, onlyReader{c})
			}()
		}
	}()
	return l.Addr().String()
}

type (
	onlyReader struct{ io.Reader }
	onlyWriter struct{ io.Writer }
)

// startBridge runs b on a fresh listener of tr and returns its address.
func startBridge(t *testing.T, b *core.Bridge, tr core.Transport) string {
	t.Helper()
	l, err := tr.Listen(context.Background(), listenAddr(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(l)
	t.Cleanup(func() { b.Close() })
	return l.Addr().String()
}

// TestBridgeBytes: bytes pass both ways unchanged, between every pair of
// unix and TCP, and a half-close reaches the far side, whose answer still
// comes back.
func TestBridgeBytes(t *testing.T) {
	for _, from := range []core.Transport{unix.Transport{}, tcp.Transport{}} {
		for _, to := range []core.Transport{unix.Transport{}, tcp.Transport{}} {
			t.Run(from.Name()+"-to-"+to.Name(), func(t *testing.T) {
				target := echoServer(t, to)
				var mu sync.Mutex
				var ended []core.BridgeStats
				b := &core.Bridge{
					Dial:  func(ctx context.Context) (net.Conn, error) { return to.Dial(ctx, target) },
					OnEnd: func(st core.BridgeStats) { mu.Lock(); ended = append(ended, st); mu.Unlock() },
				}
				addr := startBridge(t, b, from)
				c, err := from.Dial(context.Background(), addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				payload := make([]byte, 3<<20)
				rand.Read(payload)
				go func() {
					c.Write(payload)
					c.(interface{ CloseWrite() error }).CloseWrite() // the request ends here
				}()
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				got, err := io.ReadAll(c) // the answer, to its end: the half-close went through
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("echo through the bridge: %d bytes, %v; want the %d sent", len(got), err, len(payload))
				}
				c.Close()
				testwait.For(t, "the bridge to account for the connection", testwait.Timeout, func() bool { mu.Lock(); defer mu.Unlock(); return len(ended) == 1 })
				if st := ended[0]; st.In != int64(len(payload)) || st.Out != int64(len(payload)) || st.Err != nil {
					t.Fatalf("stats %+v, want %d bytes each way and no error", st, len(payload))
				}
			})
		}
	}
}

// TestBridgeMessages: line frames on one side, length frames on the other,
// both ways; a message the target codec cannot carry ends the connection
// with an error that says so, and nothing is split or dropped silently.
func TestBridgeMessages(t *testing.T) {
	srv := &core.Server{}
	hub := serve(t, srv, tcp.Transport{}, length.Codec{})
	far := dial(t, tcp.Transport{}, hub, length.Codec{})
	ended := make(chan core.BridgeStats, 4)
	b := &core.Bridge{
		Dial:      func(ctx context.Context) (net.Conn, error) { return tcp.Transport{}.Dial(ctx, hub) },
		FromCodec: line.Codec{}, ToCodec: length.Codec{},
		OnEnd: func(st core.BridgeStats) { ended <- st },
	}
	addr := startBridge(t, b, unix.Transport{})
	near := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	if err := near.Send([]byte("from a line client\r")); err != nil {
		t.Fatal(err)
	}
	if got, err := collect(far, 1, 5*time.Second); err != nil || string(got[0]) != "from a line client\r" {
		t.Fatalf("the length side got %q, %v", got, err)
	}
	far.Send([]byte("back to the line side"))
	if got, err := collect(near, 1, 5*time.Second); err != nil || string(got[0]) != "back to the line side" {
		t.Fatalf("the line side got %q, %v", got, err)
	}
	far.Send([]byte("two\nlines"))
	st := testwait.Recv(t, "the bridge to end the connection", testwait.Timeout, ended)
	if !errors.Is(st.Err, core.ErrUnrepresentable) || !strings.Contains(st.Err.Error(), "from the dialed side cannot go to the accepted side") {
		t.Fatalf("ended with %v, want an error naming the message that the line codec cannot carry", st.Err)
	}
	near.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if m, err := near.Receive(); err == nil {
		t.Fatalf("the line side received %q: the message was split or altered instead of refused", m)
	}
}

// TestBridgeWaitsForTheFarSide: while nobody listens at TO yet (a VM still
// booting), each connection keeps retrying within the dial timeout; after
// it, the error says how many attempts and why.
func TestBridgeWaitsForTheFarSide(t *testing.T) {
	sock := listenAddr(t, unix.Transport{})
	ended := make(chan core.BridgeStats, 2)
	var failed atomic.Int32
	b := &core.Bridge{
		Dial: func(ctx context.Context) (net.Conn, error) {
			c, err := unix.Transport{}.Dial(ctx, sock)
			if err != nil {
				failed.Add(1)
			}
			return c, err
		},
		DialTimeout: 10 * time.Second,
		OnEnd:       func(st core.BridgeStats) { ended <- st },
	}
	addr := startBridge(t, b, tcp.Transport{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The far side comes up only after the bridge has tried and failed.
	testwait.For(t, "the bridge to fail to dial twice", testwait.Timeout, func() bool { return failed.Load() >= 2 })
	l, err := unix.Transport{}.Listen(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if a, err := l.Accept(); err == nil {
			a.Write([]byte("finally"))
			a.Close()
		}
	}()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(c); err != nil || string(got) != "finally" {
		t.Fatalf("through a far side that came up late: %q, %v", got, err)
	}

	b2 := &core.Bridge{
		Dial:        func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, sock+".none") },
		DialTimeout: 300 * time.Millisecond,
		OnEnd:       func(st core.BridgeStats) { ended <- st },
	}
	addr2 := startBridge(t, b2, tcp.Transport{})
	c2, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for st := testwait.Recv(t, "the bridge to give up", testwait.Timeout, ended); ; st = testwait.Recv(t, "the bridge to give up", testwait.Timeout, ended) {
		var de *core.DialError
		if errors.As(st.Err, &de) {
			if de.Attempts < 3 || de.Elapsed < 250*time.Millisecond || !strings.Contains(st.Err.Error(), "no such file") {
				t.Fatalf("gave up with %v (%d attempts in %v), want retries for the dial timeout and the reason", st.Err, de.Attempts, de.Elapsed)
			}
			break
		}
	}
}

// TestBridgeRetriesNotListening: a user transport that says "nobody
// listens there yet" by wrapping core.ErrNotListening is retried like a
// refused socket; any other failure of its own ends the connection at the
// first attempt.
func TestBridgeRetriesNotListening(t *testing.T) {
	target := echoServer(t, unix.Transport{})
	for _, tc := range []struct {
		name     string
		fail     error
		attempts int32 // dials made before the far side is reached or given up on
		reached  bool
	}{
		{"not listening yet", fmt.Errorf("my medium: port 9 has no listener: %w", core.ErrNotListening), 3, true},
		{"its own failure", errors.New("my medium: the link is down"), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dials atomic.Int32
			ended := make(chan core.BridgeStats, 1)
			b := &core.Bridge{
				Dial: func(ctx context.Context) (net.Conn, error) {
					if dials.Add(1) < 3 {
						return nil, tc.fail
					}
					return unix.Transport{}.Dial(ctx, target)
				},
				DialTimeout: 10 * time.Second,
				OnEnd:       func(st core.BridgeStats) { ended <- st },
			}
			c, err := net.Dial("tcp", startBridge(t, b, tcp.Transport{}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("ping"))
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			got, _ := io.ReadAll(c)
			st := testwait.Recv(t, "the bridged connection to end", testwait.Timeout, ended)
			if n := dials.Load(); n != tc.attempts {
				t.Errorf("%d dials, want %d", n, tc.attempts)
			}
			if tc.reached {
				if string(got) != "ping" || st.Err != nil {
					t.Errorf("through the bridge: %q, %v", got, st.Err)
				}
				return
			}
			var de *core.DialError
			if !errors.As(st.Err, &de) || de.Attempts != 1 || !errors.Is(st.Err, tc.fail) {
				t.Errorf("ended with %v, want a DialError after 1 attempt wrapping %v", st.Err, tc.fail)
			}
		})
	}
}

// TestBridgeAdmitsAndLimits: the listener's admission rules apply, and
// past MaxConns a connection is refused.
func TestBridgeAdmitsAndLimits(t *testing.T) {
	target := echoServer(t, unix.Transport{})
	ended := make(chan core.BridgeStats, 4)
	tr, err := unix.Transport{}.Configure(url.Values{"allow-uid": {"4242"}})
	if err != nil {
		t.Fatal(err)
	}
	b := &core.Bridge{
		Dial:  func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, target) },
		OnEnd: func(st core.BridgeStats) { ended <- st },
	}
	addr := startBridge(t, b, tr)
	c, err := unix.Transport{}.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if st := testwait.Recv(t, "the refusal", testwait.Timeout, ended); !errors.Is(st.Err, core.ErrRefused) {
		t.Fatalf("a peer outside allow-uid: %v, want refused", st.Err)
	}

	b2 := &core.Bridge{Dial: func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, target) }, MaxConns: 2}
	addr2 := startBridge(t, b2, unix.Transport{})
	var conns []net.Conn
	for range 3 {
		c, err := unix.Transport{}.Dial(context.Background(), addr2)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		if len(conns) < 3 {
			testwait.For(t, "the connection to be bridged", testwait.Timeout, func() bool { return b2.Active() == len(conns) })
		}
	}
	conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection past MaxConns was bridged")
	}
	conns[0].Write([]byte("ok"))
	buf := make([]byte, 2)
	conns[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conns[0], buf); err != nil {
		t.Fatalf("a connection within the limit: %v", err)
	}
}

// TestBridgeIdleTimeout: a connection where nothing moves either way is
// closed with the figure; one that moves stays.
func TestBridgeIdleTimeout(t *testing.T) {
	target := echoServer(t, unix.Transport{})
	ended := make(chan core.BridgeStats, 2)
	b := &core.Bridge{
		Dial:        func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, target) },
		IdleTimeout: 200 * time.Millisecond,
		OnEnd:       func(st core.BridgeStats) { ended <- st },
	}
	addr := startBridge(t, b, unix.Transport{})
	busy, err := unix.Transport{}.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	quiet, err := unix.Transport{}.Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	buf := make([]byte, 5)
	for i := range 8 { // 800 ms of traffic on busy
		fmt.Fprintf(busy, "ping%d", i)
		busy.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("the busy connection was cut: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the busy connection's pace
	}
	st := testwait.Recv(t, "the quiet connection to be closed", testwait.Timeout, ended)
	var te *core.TimeoutError
	if !errors.As(st.Err, &te) || te.Timeout != 200*time.Millisecond || !errors.Is(st.Err, core.ErrIdleTimeout) {
		t.Fatalf("ended with %v, want an idle timeout of 200ms", st.Err)
	}
}

// TestBridgeManyAtOnce: 200 connections at once, each echoing its own
// stream, all byte-exact.
func TestBridgeManyAtOnce(t *testing.T) {
	target := echoServer(t, unix.Transport{})
	b := &core.Bridge{Dial: func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, target) }}
	addr := startBridge(t, b, unix.Transport{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := unix.Transport{}.Dial(context.Background(), addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte(fmt.Sprintf("%d;", i)), 20000)
			go func() { c.Write(msg); c.(interface{ CloseWrite() error }).CloseWrite() }()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("connection %d: %d bytes, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
