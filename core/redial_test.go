package core_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/unix"
)

// TestRedialerKeepsOutboxAcrossRestart: what is sent while the hub is away
// waits in the outbox and arrives, in order, at the next hub.
func TestRedialerKeepsOutboxAcrossRestart(t *testing.T) {
	sock := listenAddr(t, unix.Transport{})
	startHub := func() *core.Server {
		l, err := unix.Transport{}.Listen(context.Background(), sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := &core.Server{}
		go srv.Serve(l, line.Codec{})
		return srv
	}
	hub := startHub()
	var lost, connected, full atomic.Int64
	r := &core.Redialer{
		Dial:         func(ctx context.Context) (net.Conn, error) { return unix.Transport{}.Dial(ctx, sock) },
		Codec:        line.Codec{},
		Outbox:       100,
		MinBackoff:   300 * time.Millisecond,
		MaxBackoff:   time.Second,
		OnLost:       func(error, int) { lost.Add(1) },
		OnConnected:  func(net.Conn, int) { connected.Add(1) },
		OnOutboxFull: func(int) { full.Add(1) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(ctx) }()
	testwait.For(t, "the first connection", testwait.Timeout, func() bool { return connected.Load() > 0 })
	hub.Close()
	testwait.For(t, "the loss to be reported", testwait.Timeout, func() bool { return lost.Load() > 0 })
	for i := range 100 { // exactly fills the outbox: no wait
		if err := r.Send(ctx, []byte(fmt.Sprintf("queued %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if full.Load() != 0 {
		t.Fatal("the outbox reported full before it was")
	}
	hub2 := startHub()
	defer hub2.Close()
	recv, err := core.Dial(ctx, unix.Transport{}, sock, line.Codec{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	got, err := collect(recv, 100, 10*time.Second)
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	for i, m := range got {
		if string(m) != fmt.Sprintf("queued %d", i) {
			t.Fatalf("message %d is %q", i, m)
		}
	}
	r.CloseSend()
	if err := testwait.Recv(t, "Run to return after CloseSend", testwait.Timeout, runErr); err != nil {
		t.Fatalf("Run after CloseSend: %v", err)
	}
	if connected.Load() != 2 {
		t.Fatalf("connected %d times, want 2", connected.Load())
	}
}
