package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
)

type setup struct {
	name      string
	transport core.Transport
	codec     core.Codec
}

func setups() []setup {
	var out []setup
	for _, tr := range []core.Transport{unix.Transport{}, tcp.Transport{}} {
		for _, c := range []core.Codec{line.Codec{}, length.Codec{}} {
			out = append(out, setup{tr.Name() + "/" + c.Name(), tr, c})
		}
	}
	return out
}

func listenAddr(t *testing.T, tr core.Transport) string {
	if tr.Name() == "unix" {
		dir, err := os.MkdirTemp("", "th")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return filepath.Join(dir, "hub.sock")
	}
	return "127.0.0.1:0"
}

// serve starts srv on a fresh listener and returns the address to dial. The
// server is closed when the test ends.
func serve(t *testing.T, srv *core.Server, tr core.Transport, c core.Codec) string {
	t.Helper()
	l, err := tr.Listen(context.Background(), listenAddr(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l, c) }()
	t.Cleanup(func() {
		srv.Close()
		if err := testwait.Recv(t, "Serve to return after Close", testwait.Timeout, errc); !errors.Is(err, core.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

func dial(t *testing.T, tr core.Transport, addr string, c core.Codec) *core.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := core.Dial(ctx, tr, addr, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// waitPeers waits until the server has n peers in its room.
func waitPeers(t *testing.T, srv *core.Server, n int) {
	t.Helper()
	testwait.For(t, fmt.Sprintf("%d peers in the room", n), testwait.Timeout, func() bool { return len(srv.Peers()) == n })
}

// collect receives n messages, copying each.
func collect(cl *core.Client, n int, timeout time.Duration) ([][]byte, error) {
	cl.Conn().SetReadDeadline(time.Now().Add(timeout))
	defer cl.Conn().SetReadDeadline(time.Time{})
	out := make([][]byte, 0, n)
	for len(out) < n {
		m, err := cl.Receive()
		if err != nil {
			return out, fmt.Errorf("after %d of %d messages: %w", len(out), n, err)
		}
		out = append(out, bytes.Clone(m))
	}
	return out, nil
}

// checkFanIn checks that got holds exactly count messages "s<i>-<seq>" from
// every sender i in senders, each sender's in order.
func checkFanIn(got [][]byte, senders []int, count int) error {
	next := map[int]int{}
	for _, m := range got {
		var i, seq int
		if _, err := fmt.Sscanf(string(m[:bytes.IndexByte(m, ' ')]), "s%d-%d", &i, &seq); err != nil {
			return fmt.Errorf("unexpected message %q", m)
		}
		if seq != next[i] {
			return fmt.Errorf("from sender %d: got seq %d, want %d (lost or reordered)", i, seq, next[i])
		}
		if want := payload(i, seq); !bytes.Equal(m, want) {
			return fmt.Errorf("message %d from %d altered: %q, want %q", seq, i, m, want)
		}
		next[i]++
	}
	for _, i := range senders {
		if next[i] != count {
			return fmt.Errorf("from sender %d: got %d messages, want %d", i, next[i], count)
		}
	}
	if len(next) != len(senders) {
		return fmt.Errorf("messages from %d senders, want %d", len(next), len(senders))
	}
	return nil
}

func payload(i, seq int) []byte {
	pad := strings.Repeat("x", (i*7+seq)%300)
	return []byte(fmt.Sprintf("s%d-%d %s\r", i, seq, pad))
}

func TestHubFanOut(t *testing.T) {
	const clients, perClient = 8, 300
	for _, su := range setups() {
		t.Run(su.name, func(t *testing.T) {
			srv := &core.Server{}
			addr := serve(t, srv, su.transport, su.codec)
			cls := make([]*core.Client, clients)
			for i := range cls {
				cls[i] = dial(t, su.transport, addr, su.codec)
			}
			waitPeers(t, srv, clients)
			var wg sync.WaitGroup
			errs := make(chan error, 2*clients)
			for i, cl := range cls {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for seq := range perClient {
						if err := cl.Queue(payload(i, seq)); err != nil {
							errs <- err
							return
						}
					}
					if err := cl.Flush(); err != nil {
						errs <- err
					}
				}()
				go func() {
					defer wg.Done()
					got, err := collect(cl, (clients-1)*perClient, 20*time.Second)
					if err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
						return
					}
					var senders []int
					for j := range clients {
						if j != i {
							senders = append(senders, j)
						}
					}
					if err := checkFanIn(got, senders, perClient); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestHubMixedListeners runs one room over unix/line and tcp/length at once.
func TestHubMixedListeners(t *testing.T) {
	srv := &core.Server{}
	ua := serve(t, srv, unix.Transport{}, line.Codec{})
	ta := serve(t, srv, tcp.Transport{}, length.Codec{})
	u := dial(t, unix.Transport{}, ua, line.Codec{})
	tc := dial(t, tcp.Transport{}, ta, length.Codec{})
	waitPeers(t, srv, 2)
	if err := u.Send([]byte("from unix")); err != nil {
		t.Fatal(err)
	}
	if err := tc.Send([]byte("from tcp\nwith a newline")); err != nil {
		t.Fatal(err)
	}
	if err := tc.Send([]byte("from tcp")); err != nil {
		t.Fatal(err)
	}
	got, err := collect(tc, 1, 5*time.Second)
	if err != nil || string(got[0]) != "from unix" {
		t.Fatalf("tcp client got %q, %v", got, err)
	}
	// The line client cannot be sent a message with a newline: it gets the next one.
	got, err = collect(u, 1, 5*time.Second)
	if err != nil || string(got[0]) != "from tcp" {
		t.Fatalf("unix client got %q, %v; want the representable message only", got, err)
	}
}

// TestSlowReaderLosesNothing has one receiver read slowly through a tiny
// queue: the senders are held back, nothing is dropped.
func TestSlowReaderLosesNothing(t *testing.T) {
	srv := &core.Server{QueueLen: 2, QueueBytes: 64, StallTimeout: 5 * time.Second}
	addr := serve(t, srv, unix.Transport{}, length.Codec{})
	sender := dial(t, unix.Transport{}, addr, length.Codec{})
	slow := dial(t, unix.Transport{}, addr, length.Codec{})
	fast := dial(t, unix.Transport{}, addr, length.Codec{})
	waitPeers(t, srv, 3)
	const n = 2000
	big := bytes.Repeat([]byte("y"), 64<<10) // fills socket buffers so the queue is what holds back
	go func() {
		for seq := range n {
			m := payload(0, seq)
			if seq%100 == 0 {
				m = append(m, big...)
			}
			sender.Queue(m)
		}
		sender.Flush()
	}()
	var fastErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, fastErr = collect(fast, n, 20*time.Second)
	}()
	slow.Conn().SetReadDeadline(time.Now().Add(20 * time.Second))
	for seq := range n {
		m, err := slow.Receive()
		if err != nil {
			t.Fatalf("slow reader: message %d: %v", seq, err)
		}
		want := payload(0, seq)
		if !bytes.HasPrefix(m, want) {
			t.Fatalf("slow reader: message %d is %.40q, want %q", seq, m, want)
		}
		if seq%200 == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	testwait.Recv(t, "the fast reader", 30*time.Second, done)
	if fastErr != nil {
		t.Fatalf("fast reader: %v", fastErr)
	}
}

// TestStalledReaderDisconnected has a client that never reads: it is
// disconnected after the stall timeout, and the others receive everything.
func TestStalledReaderDisconnected(t *testing.T) {
	left := make(chan error, 4)
	srv := &core.Server{StallTimeout: 300 * time.Millisecond, QueueLen: 8,
		OnLeave: func(p *core.Peer, err error) { left <- err }}
	addr := serve(t, srv, tcp.Transport{}, length.Codec{})
	sender := dial(t, tcp.Transport{}, addr, length.Codec{})
	reader := dial(t, tcp.Transport{}, addr, length.Codec{})
	stuck := dial(t, tcp.Transport{}, addr, length.Codec{})
	_ = stuck
	waitPeers(t, srv, 3)
	const n = 400
	msg := bytes.Repeat([]byte("z"), 32<<10) // 12.8 MB in all: far past any socket buffer
	go func() {
		for range n {
			if sender.Send(msg) != nil {
				return
			}
		}
	}()
	got, err := collect(reader, n, 30*time.Second)
	if err != nil {
		t.Fatalf("the reading client lost messages: %v", err)
	}
	for i, m := range got {
		if !bytes.Equal(m, msg) {
			t.Fatalf("message %d altered", i)
		}
	}
	select {
	case err := <-left:
		var stall *core.StallError
		if !errors.As(err, &stall) || !errors.Is(err, core.ErrStalled) {
			t.Fatalf("the stuck client left with %v, want a StallError", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck client was not disconnected")
	}
}

// TestHostilePeersHarmNoOne sends oversized, endless and truncated frames
// from separate clients while two others talk.
func TestHostilePeersHarmNoOne(t *testing.T) {
	attacks := []struct {
		name  string
		codec core.Codec
		bytes []byte
		want  error
	}{
		{"4 GiB length", length.Codec{}, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3}, core.ErrFrameTooLarge},
		{"text on length", length.Codec{}, []byte("hello there\n"), core.ErrFrameTooLarge},
		{"endless line", line.Codec{}, bytes.Repeat([]byte("A"), 3000), core.ErrFrameTooLarge},
		{"truncated frame", length.Codec{}, []byte{0, 0, 0, 100, 'a', 'b'}, core.ErrTruncatedFrame},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			reasons := make(chan error, 8)
			srv := &core.Server{MaxFrame: 1024, OnLeave: func(p *core.Peer, err error) {
				if err != nil {
					reasons <- err
				}
			}}
			addr := serve(t, srv, unix.Transport{}, a.codec)
			alice := dial(t, unix.Transport{}, addr, a.codec)
			bob := dial(t, unix.Transport{}, addr, a.codec)
			waitPeers(t, srv, 2)
			raw, err := net.Dial("unix", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			waitPeers(t, srv, 3)
			raw.Write(a.bytes)
			if a.want == core.ErrTruncatedFrame {
				raw.(*net.UnixConn).CloseWrite()
			}
			select {
			case err := <-reasons:
				if !errors.Is(err, a.want) {
					t.Fatalf("hostile peer removed with %v, want %v", err, a.want)
				}
				var tl *core.FrameTooLargeError
				if a.name == "text on length" && (!errors.As(err, &tl) || tl.PeerCodec != "line") {
					t.Fatalf("error %q does not name the line codec the peer seems to speak", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("hostile peer not disconnected")
			}
			alice.Send([]byte("still here?"))
			got, err := collect(bob, 1, 5*time.Second)
			if err != nil || string(got[0]) != "still here?" {
				t.Fatalf("bob got %q, %v after the attack", got, err)
			}
		})
	}
}

// TestShutdownDeliversQueued checks that Shutdown delivers what was accepted
// and that Serve returns ErrServerClosed.
func TestShutdownDeliversQueued(t *testing.T) {
	for _, su := range setups() {
		t.Run(su.name, func(t *testing.T) {
			var received atomic.Int64
			srv := &core.Server{Logger: testLogger(t), OnMessage: func(*core.Peer, []byte) { received.Add(1) }}
			l, err := su.transport.Listen(context.Background(), listenAddr(t, su.transport))
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l, su.codec) }()
			addr := l.Addr().String()
			sender := dial(t, su.transport, addr, su.codec)
			recv := dial(t, su.transport, addr, su.codec)
			waitPeers(t, srv, 2)
			type result struct {
				got [][]byte
				err error
			}
			recvDone := make(chan result, 1)
			go func() {
				var r result
				recv.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					m, err := recv.Receive()
					if err == io.EOF {
						recv.Close()
						break
					}
					if err != nil {
						r.err = err
						break
					}
					r.got = append(r.got, bytes.Clone(m))
				}
				recvDone <- r
			}()
			const n = 5000
			go func() {
				for seq := range n {
					sender.Queue(payload(1, seq))
				}
				sender.Flush()
			}()
			go func() { // a well-behaved client closes when the hub does
				for {
					if _, err := sender.Receive(); err != nil {
						sender.Close()
						return
					}
				}
			}()
			testwait.For(t, "half the messages accepted", testwait.Timeout, func() bool { return received.Load() >= n/2 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			shutdownErr := make(chan error, 1)
			go func() { shutdownErr <- srv.Shutdown(ctx) }()
			r := testwait.Recv(t, "the receiver to finish after shutdown began", 20*time.Second, recvDone)
			if r.err != nil {
				t.Fatalf("receiving after shutdown began: %v", r.err)
			}
			got := r.got
			if err := testwait.Recv(t, "Shutdown to return", 20*time.Second, shutdownErr); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			accepted := int(received.Load())
			if len(got) != accepted {
				t.Fatalf("server accepted %d messages, receiver got %d", accepted, len(got))
			}
			if err := checkFanIn(got, []int{1}, accepted); err != nil {
				t.Fatal(err)
			}
			if err := testwait.Recv(t, "Serve to return after Shutdown", testwait.Timeout, errc); !errors.Is(err, core.ErrServerClosed) {
				t.Fatalf("Serve returned %v, want ErrServerClosed", err)
			}
			if err := srv.Serve(l, su.codec); !errors.Is(err, core.ErrServerClosed) {
				t.Fatalf("Serve after Shutdown returned %v", err)
			}
			srv.Close() // idempotent
			srv.Close()
		})
	}
}

// TestClientShutdownDeliversAll checks the client's graceful close: every
// message sent before Shutdown reaches the other client.
func TestClientShutdownDeliversAll(t *testing.T) {
	srv := &core.Server{}
	addr := serve(t, srv, tcp.Transport{}, line.Codec{})
	sender := dial(t, tcp.Transport{}, addr, line.Codec{})
	recv := dial(t, tcp.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	const n = 20000
	for seq := range n {
		sender.Queue(payload(2, seq))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sender.Shutdown(ctx); err != nil {
		t.Fatalf("client Shutdown: %v", err)
	}
	got, err := collect(recv, n, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkFanIn(got, []int{2}, n); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, srv, 1)
}

func TestChatModeAndHostBroadcast(t *testing.T) {
	srv := &core.Server{Chat: true}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	a := dial(t, unix.Transport{}, addr, line.Codec{})
	b := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	a.Send([]byte("hi"))
	got, err := collect(b, 1, 5*time.Second)
	if err != nil || (string(got[0]) != "#1: hi" && string(got[0]) != "#2: hi") {
		t.Fatalf("got %q, %v; want the sender's name, then \": hi\"", got, err)
	}
	srv.Broadcast([]byte("welcome"))
	for _, cl := range []*core.Client{a, b} {
		got, err := collect(cl, 1, 5*time.Second)
		if err != nil || string(got[0]) != "host: welcome" {
			t.Fatalf("got %q, %v; want the host's message to everyone", got, err)
		}
	}
}

// flakyListener fails Accept a number of times, counting the calls.
type flakyListener struct {
	net.Listener
	calls atomic.Int64
}

func (f *flakyListener) Accept() (net.Conn, error) {
	f.calls.Add(1)
	return nil, errors.New("accept: too many open files")
}

func TestAcceptBacksOff(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: inner}
	srv := &core.Server{}
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- srv.Serve(fl, line.Codec{}) }()
	// Backoff 5, 10, 20, 40, 80 ms: the sixth call comes after 155 ms at
	// the soonest; a spinning loop would make it in microseconds.
	testwait.For(t, "six calls to Accept", testwait.Timeout, func() bool { return fl.calls.Load() >= 6 })
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("Accept called 6 times in %v: the loop does not back off", took)
	}
	srv.Close()
	if err := testwait.Recv(t, "Serve to return after Close", testwait.Timeout, errc); !errors.Is(err, core.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestManyClientsJoinAndLeave(t *testing.T) {
	var joins, leaves atomic.Int64
	srv := &core.Server{OnJoin: func(*core.Peer) { joins.Add(1) }, OnLeave: func(*core.Peer, error) { leaves.Add(1) }}
	addr := serve(t, srv, tcp.Transport{}, line.Codec{})
	watcher := dial(t, tcp.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 1)
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := core.Dial(context.Background(), tcp.Transport{}, addr, line.Codec{}, 0)
			if err != nil {
				t.Error(err)
				return
			}
			cl.Queue([]byte("hello from " + strconv.Itoa(i)))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := cl.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	got, err := collect(watcher, n, 20*time.Second)
	wg.Wait()
	if err != nil {
		t.Fatalf("watcher: %v", err)
	}
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m)] = true
	}
	if len(seen) != n {
		t.Fatalf("watcher saw %d distinct greetings, want %d", len(seen), n)
	}
	waitPeers(t, srv, 1)
	testwait.For(t, "every client's leave", testwait.Timeout, func() bool { return leaves.Load() >= n })
	if joins.Load() != n+1 || leaves.Load() != n {
		t.Fatalf("joins %d leaves %d, want %d and %d", joins.Load(), leaves.Load(), n+1, n)
	}
}

func testLogger(t *testing.T) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestWriteTimeoutDripReader: a reader that drips bytes makes progress, so
// the stall timeout spares it, but the write timeout bounds it.
func TestWriteTimeoutDripReader(t *testing.T) {
	left := make(chan error, 4)
	srv := &core.Server{WriteTimeout: 300 * time.Millisecond, OnLeave: func(p *core.Peer, err error) {
		if err != nil {
			left <- err
		}
	}}
	addr := serve(t, srv, unix.Transport{}, length.Codec{})
	sender := dial(t, unix.Transport{}, addr, length.Codec{})
	drip, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	drip.(*net.UnixConn).SetReadBuffer(4096)
	waitPeers(t, srv, 2)
	go func() {
		for range 8 {
			if sender.Send(bytes.Repeat([]byte("d"), 512<<10)) != nil {
				return
			}
		}
	}()
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := drip.Read(buf); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case err := <-left:
		var te *core.TimeoutError
		if !errors.As(err, &te) || !errors.Is(err, core.ErrWriteTimeout) || te.Timeout != 300*time.Millisecond {
			t.Fatalf("the drip reader left with %v, want a write timeout of 300ms", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drip reader was not disconnected")
	}
}

// TestReadBudget: clients holding large half-sent frames share one budget;
// past it a client is refused with the figures, and the budget comes back
// when they leave.
func TestReadBudget(t *testing.T) {
	reasons := make(chan error, 8)
	srv := &core.Server{ReadBudget: 600 << 10, OnLeave: func(p *core.Peer, err error) {
		if err != nil {
			reasons <- err
		}
	}}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	recv := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 1)
	half := bytes.Repeat([]byte("h"), 300<<10) // no newline: a frame in flight
	a, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	a.Write(half)
	testwait.For(t, "the first half-sent frame to hold 512 KiB of the budget", testwait.Timeout, func() bool { return srv.Stats().ReadBudgetInUse >= 512<<10 })
	b, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Write(half)
	select {
	case err := <-reasons:
		var be *core.BudgetError
		if !errors.As(err, &be) || be.Limit != 600<<10 || be.InUse < 256<<10 {
			t.Fatalf("second holder left with %v, want a BudgetError with the figures", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second half-sent frame was not refused")
	}
	a.Close() // its half frame ends as a final line; its budget comes back
	if got, err := collect(recv, 1, 5*time.Second); err != nil || len(got[0]) != len(half) {
		t.Fatalf("receiver: %v", err)
	}
	big := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	if err := big.Send(half); err != nil {
		t.Fatal(err)
	}
	if got, err := collect(recv, 1, 5*time.Second); err != nil || !bytes.Equal(got[0], half) {
		t.Fatalf("a large message after the budget came back: %v", err)
	}
}
