package core_test

// The mistakes people make with a library first: zero values, calls after
// Close, arguments that can never work. Each must end in an error a user
// can act on: no panic, no hang, no silent loss.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
)

func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &core.Server{})
	zerotest.Calls(t, &core.Client{})
	zerotest.Calls(t, &core.Peer{})
	zerotest.Calls(t, &core.Redialer{}, "Receive")              // Receive waits for Run, by design
	zerotest.Calls(t, &core.Registry[core.Codec]{}, "Register") // a nil plug-in panics, by design
	zerotest.Calls(t, &core.Resolver{})
	zerotest.Calls(t, &core.Target{})
	zerotest.Calls(t, &core.Endpoint{})
	for _, e := range []error{&core.FrameTooLargeError{}, &core.TruncatedFrameError{}, &core.UnknownNameError{}, &core.StallError{},
		&core.TimeoutError{}, &core.HandshakeError{Err: io.EOF}, &core.PeerLimitError{}, &core.BudgetError{}, &core.RefusedError{Err: io.EOF},
		&core.UndeliverableError{}, &core.OptionError{}, &core.NotSupportedError{}} {
		zerotest.Calls(t, e)
	}
}

func TestZeroClientSaysHowToMakeOne(t *testing.T) {
	var c core.Client
	if err := c.Send([]byte("x")); err == nil || !strings.Contains(err.Error(), "Dial or NewClient") {
		t.Fatalf("Send on a zero Client: %v", err)
	}
	if _, err := core.NewClient(nil, nil, 0).Receive(); err == nil {
		t.Fatal("Receive on a client with no connection succeeded")
	}
}

// TestClientAfterClose: Close is idempotent and everything after it says
// net.ErrClosed.
func TestClientAfterClose(t *testing.T) {
	srv := &core.Server{}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	cl := dial(t, unix.Transport{}, addr, line.Codec{})
	if err := cl.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("second Close: %v, want nil", err)
	}
	for name, err := range map[string]error{
		"Send": cl.Send([]byte("x")), "Queue": cl.Queue([]byte("x")), "Flush": cl.Flush(), "CloseWrite": cl.CloseWrite(),
		"Shutdown": cl.Shutdown(context.Background()),
	} {
		if !errors.Is(err, net.ErrClosed) || err.Error() != net.ErrClosed.Error() {
			t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
		}
	}
	if _, err := cl.Receive(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close: %v, want net.ErrClosed", err)
	}
}

// TestClientRefusesWhatCannotBeSent: over the frame limit or unframable,
// refused at once with the typed error; the client stays usable.
func TestClientRefusesWhatCannotBeSent(t *testing.T) {
	srv := &core.Server{MaxFrame: 100}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	a := dial(t, unix.Transport{}, addr, line.Codec{})
	b := dial(t, unix.Transport{}, addr, line.Codec{})
	big, err := core.Dial(context.Background(), unix.Transport{}, addr, line.Codec{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	waitPeers(t, srv, 3)
	var tl *core.FrameTooLargeError
	if err := big.Send(bytes.Repeat([]byte("x"), 101)); !errors.As(err, &tl) || tl.Size != 101 || tl.Limit != 100 {
		t.Fatalf("a message over the client's limit: %v, want a FrameTooLargeError with 101 and 100", err)
	}
	if err := a.Send([]byte("two\nlines")); !errors.Is(err, core.ErrUnrepresentable) {
		t.Fatalf("a newline on the line codec: %v, want ErrUnrepresentable", err)
	}
	if err := big.Send([]byte("still fine")); err != nil {
		t.Fatal(err)
	}
	got, err := collect(b, 1, 5*time.Second)
	if err != nil || string(got[0]) != "still fine" {
		t.Fatalf("after the refusals: %q, %v", got, err)
	}
}

func TestDialMisuse(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		tr   core.Transport
		c    core.Codec
		addr string
		max  int
		want string
	}{
		{"nil transport", nil, line.Codec{}, "127.0.0.1:1", 0, "needs a transport and a codec"},
		{"nil codec", tcp.Transport{}, nil, "127.0.0.1:1", 0, "needs a transport and a codec"},
		{"negative limit", tcp.Transport{}, line.Codec{}, "127.0.0.1:1", -1, "maxFrame is -1"},
		{"another scheme", tcp.Transport{}, line.Codec{}, "unix:///x.sock", 0, `names transport "unix", but the transport given is "tcp"`},
		{"codec in the address", tcp.Transport{}, line.Codec{}, "tcp://127.0.0.1:1?codec=line", 0, "Dial's argument"},
		{"unknown option", tcp.Transport{}, line.Codec{}, "tcp://127.0.0.1:1?nope=1", 0, "valid: allow-net"},
	} {
		if _, err := core.Dial(ctx, tt.tr, tt.addr, tt.c, tt.max); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// The transport's own scheme is accepted.
	srv := &core.Server{}
	addr := serve(t, srv, tcp.Transport{}, line.Codec{})
	cl, err := core.Dial(ctx, tcp.Transport{}, "tcp://"+addr, line.Codec{}, 0)
	if err != nil {
		t.Fatalf("Dial with the transport's own scheme: %v", err)
	}
	cl.Close()
}

func TestZeroRegistry(t *testing.T) {
	var r core.Registry[core.Codec]
	_, err := r.Lookup("x")
	if err == nil || !strings.Contains(err.Error(), `unknown plug-in "x": none is registered; register one`) {
		t.Fatalf("Lookup on an empty zero registry: %v", err)
	}
	r.Register(line.Codec{})
	if c, err := r.Lookup("line"); err != nil || c.Name() != "line" {
		t.Fatalf("a zero registry must accept registrations: %v", err)
	}
	if _, err := r.Default(); err == nil || !strings.Contains(err.Error(), "no default") {
		t.Fatalf("Default with none set: %v", err)
	}
	r.SetDefault("line")
	if c, err := r.Default(); err != nil || c.Name() != "line" {
		t.Fatalf("Default: %v, %v", c, err)
	}
}

func TestServerMisuse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*core.Server{{MaxFrame: -1}, {QueueLen: -5}, {QueueBytes: -1}} {
		if err := srv.Serve(l, line.Codec{}); err == nil || !strings.Contains(err.Error(), "cannot be unlimited") {
			t.Errorf("Serve with %+v: %v", srv, err)
		}
		l, _ = net.Listen("tcp", "127.0.0.1:0") // Serve closed it
	}
	srv := &core.Server{}
	if err := srv.Serve(l, nil); err == nil || !strings.Contains(err.Error(), "needs a codec") {
		t.Errorf("Serve without a codec: %v", err)
	}
	if err := srv.Serve(nil, line.Codec{}); err == nil {
		t.Error("Serve without a listener succeeded")
	}
	srv.Close()
	l, _ = net.Listen("tcp", "127.0.0.1:0")
	if err := srv.Serve(l, line.Codec{}); !errors.Is(err, core.ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	if err := srv.Broadcast([]byte("x")); !errors.Is(err, core.ErrServerClosed) {
		t.Errorf("Broadcast after Close: %v", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after Close: %v", err)
	}
}

// TestBroadcastNobodyCanCarry: a host message no connected client's codec
// can carry is an error, not a silent nothing; one some can carry reaches
// them.
func TestBroadcastNobodyCanCarry(t *testing.T) {
	srv := &core.Server{}
	if err := srv.Broadcast([]byte("a\nb")); err != nil {
		t.Fatalf("Broadcast with nobody connected: %v, want nil", err)
	}
	ua := serve(t, srv, unix.Transport{}, line.Codec{})
	lc := dial(t, unix.Transport{}, ua, line.Codec{})
	waitPeers(t, srv, 1)
	err := srv.Broadcast([]byte("a\nb"))
	var ue *core.UndeliverableError
	if !errors.As(err, &ue) || ue.Peers != 1 || !errors.Is(err, core.ErrNotDelivered) || !errors.Is(err, core.ErrUnrepresentable) {
		t.Fatalf("Broadcast no codec can carry: %v, want an UndeliverableError for 1 peer", err)
	}
	ta := serve(t, srv, tcp.Transport{}, length.Codec{})
	tc := dial(t, tcp.Transport{}, ta, length.Codec{})
	waitPeers(t, srv, 2)
	if err := srv.Broadcast([]byte("a\nb")); err != nil {
		t.Fatalf("Broadcast the length client can carry: %v", err)
	}
	if got, err := collect(tc, 1, 5*time.Second); err != nil || string(got[0]) != "a\nb" {
		t.Fatalf("the length client got %q, %v", got, err)
	}
	if err := srv.Broadcast([]byte("for both")); err != nil {
		t.Fatal(err)
	}
	if got, err := collect(lc, 1, 5*time.Second); err != nil || string(got[0]) != "for both" {
		t.Fatalf("the line client got %q, %v; want only what it can carry", got, err)
	}
}

// TestShutdownLingerBoundedByContext: a client that neither reads nor
// closes holds Shutdown no longer than its context allows.
func TestShutdownLingerBoundedByContext(t *testing.T) {
	srv := &core.Server{}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	raw, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	waitPeers(t, srv, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = srv.Shutdown(ctx)
	took := time.Since(start)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if took > time.Second {
		t.Fatalf("Shutdown took %v with a 300ms context: the linger is not bounded by it", took)
	}
}

func TestRedialerMisuse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var zero core.Redialer
	if err := zero.Run(ctx); err == nil || !strings.Contains(err.Error(), "needs Dial and Codec") {
		t.Fatalf("Run on a zero Redialer: %v", err)
	}
	if _, err := zero.Receive(); err != io.EOF {
		t.Fatalf("Receive after a refused Run: %v, want io.EOF", err)
	}
	if err := zero.Send(ctx, []byte("x")); err == nil || !strings.Contains(err.Error(), "needs Dial and Codec") {
		t.Fatalf("Send on a zero Redialer: %v", err)
	}

	sock := listenAddr(t, unix.Transport{})
	nobody := func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, sock) }
	r := &core.Redialer{Dial: nobody, Codec: line.Codec{}, MaxFrame: 10, OutboxBytes: 20, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	if err := r.Send(ctx, []byte("a\nb")); !errors.Is(err, core.ErrUnrepresentable) {
		t.Fatalf("Send of a newline on the line codec: %v, want ErrUnrepresentable at once", err)
	}
	if err := r.Send(ctx, bytes.Repeat([]byte("x"), 11)); !errors.Is(err, core.ErrFrameTooLarge) {
		t.Fatalf("Send over MaxFrame: %v, want ErrFrameTooLarge", err)
	}
	for range 2 {
		if err := r.Send(ctx, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	full, cancelFull := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelFull()
	if err := r.Send(full, []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send into an outbox whose 20 bytes are held: %v, want it to wait until its context ends", err)
	}

	runCtx, stop := context.WithTimeout(ctx, 200*time.Millisecond)
	defer stop()
	err := r.Run(runCtx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last failure") || !strings.Contains(err.Error(), sock) {
		t.Fatalf("Run that never connects: %v, want the deadline and the last dial error", err)
	}
	if err := r.Run(ctx); !errors.Is(err, core.ErrRedialerUsed) {
		t.Fatalf("a second Run: %v, want ErrRedialerUsed", err)
	}
	r.CloseSend()
	if err := r.Send(ctx, []byte("x")); !errors.Is(err, core.ErrSendClosed) {
		t.Fatalf("Send after CloseSend: %v", err)
	}
}

// TestRedialerRunTwiceConcurrently: the second Run is refused while the
// first runs, and the first is unharmed.
func TestRedialerRunTwiceConcurrently(t *testing.T) {
	srv := &core.Server{}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	var connected atomic.Int64
	r := &core.Redialer{
		Dial:        func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, addr) },
		Codec:       line.Codec{},
		OnConnected: func(net.Conn, int) { connected.Add(1) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- r.Run(ctx) }()
	testwait.For(t, "the first Run to connect", testwait.Timeout, func() bool { return connected.Load() == 1 })
	if err := r.Run(ctx); !errors.Is(err, core.ErrRedialerUsed) {
		t.Fatalf("a second Run while the first runs: %v", err)
	}
	r.CloseSend()
	if err := testwait.Recv(t, "the first Run to end after CloseSend", testwait.Timeout, first); err != nil {
		t.Fatalf("the first Run: %v", err)
	}
}
