package core_test

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/unix"
)

// refusals collects what OnRefuse reports.
type refusals struct {
	mu   sync.Mutex
	errs []error
}

func (r *refusals) add(_ net.Addr, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *refusals) list() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// TestAdmitSeesIdentity: the server's Admit hook runs after the handshake
// with the peer's identity known; a refusal is reported with the rule's
// answer, and the refused peer's messages reach nobody.
func TestAdmitSeesIdentity(t *testing.T) {
	var refused refusals
	var seen sync.Map
	n := 0
	srv := &core.Server{
		Admit: func(p *core.Peer) error {
			seen.Store(p.Identity(), true)
			n++
			if n == 2 {
				return errors.New("the second peer is not welcome")
			}
			return nil
		},
		OnRefuse: refused.add,
	}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	first := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 1)
	second := dial(t, unix.Transport{}, addr, line.Codec{})
	testwait.For(t, "the refusal", testwait.Timeout, func() bool { return len(refused.list()) == 1 })
	err := refused.list()[0]
	var re *core.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, core.ErrRefused) || !strings.Contains(err.Error(), "not welcome") {
		t.Fatalf("refusal %v, want a RefusedError carrying the hook's answer", err)
	}
	want := fmt.Sprintf("uid=%d,pid=%d", os.Getuid(), os.Getpid())
	if _, ok := seen.Load(want); !ok {
		t.Fatalf("Admit never saw the identity %s", want)
	}
	second.Send([]byte("from the refused"))
	third := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	third.Send([]byte("from the third"))
	if got, err := collect(first, 1, 5*time.Second); err != nil || string(got[0]) != "from the third" {
		t.Fatalf("first got %q, %v; want only the admitted peer's message", got, err)
	}
}

// TestListenerRules: a transport's own admission rule (here unix's
// allow-uid) is applied by the server to every connection from that
// listener, and named in the refusal.
func TestListenerRules(t *testing.T) {
	var refused refusals
	srv := &core.Server{OnRefuse: refused.add}
	tr, err := unix.Transport{}.Configure(url.Values{"allow-uid": {"4242"}})
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv, tr, line.Codec{})
	c := dial(t, unix.Transport{}, addr, line.Codec{})
	testwait.For(t, "the refusal", testwait.Timeout, func() bool { return len(refused.list()) == 1 })
	if err := refused.list()[0]; !errors.Is(err, core.ErrRefused) || !strings.Contains(err.Error(), "allow-uid 4242") {
		t.Fatalf("refusal %v, want ErrRefused naming allow-uid 4242", err)
	}
	if len(srv.Peers()) != 0 {
		t.Fatal("a refused peer joined the room")
	}
	c.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Receive(); err == nil {
		t.Fatal("the refused client's connection is still open")
	}
}

// TestMaxConns: past the limit a connection is closed at once and reported
// with a PeerLimitError; when a peer leaves, there is room again.
func TestMaxConns(t *testing.T) {
	var refused refusals
	srv := &core.Server{MaxConns: 2, OnRefuse: refused.add}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})
	a := dial(t, unix.Transport{}, addr, line.Codec{})
	dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	over := dial(t, unix.Transport{}, addr, line.Codec{})
	testwait.For(t, "the refusal past the limit", testwait.Timeout, func() bool { return len(refused.list()) == 1 })
	var pl *core.PeerLimitError
	if err := refused.list()[0]; !errors.As(err, &pl) || pl.Limit != 2 || !errors.Is(err, core.ErrTooManyPeers) {
		t.Fatalf("refusal %v, want a PeerLimitError of 2", err)
	}
	over.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Receive(); err == nil {
		t.Fatal("the connection past the limit is still open")
	}
	a.Close()
	testwait.For(t, "the first peer to be gone", testwait.Timeout, func() bool { return srv.Stats().Connections == 1 })
	dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
}

// TestIdleTimeout: a peer that sends nothing and takes nothing is cut with
// the figure; a peer that only listens while the room talks stays; one that
// drips a frame a byte at a time is cut too.
func TestIdleTimeout(t *testing.T) {
	left := make(chan error, 4)
	srv := &core.Server{IdleTimeout: 300 * time.Millisecond, OnLeave: func(p *core.Peer, err error) { left <- err }}
	addr := serve(t, srv, unix.Transport{}, line.Codec{})

	// Alone in a quiet room, nothing moves: cut.
	silent := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 1)
	err := testwait.Recv(t, "the silent peer's disconnection", 5*time.Second, left)
	var te *core.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, core.ErrIdleTimeout) || te.Timeout != 300*time.Millisecond {
		t.Fatalf("the silent peer left with %v, want an idle TimeoutError of 300ms", err)
	}
	silent.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Receive(); err == nil {
		t.Fatal("the silent peer's connection is still open")
	}

	// A peer that only listens, while the room talks for four idle periods: stays.
	talker := dial(t, unix.Transport{}, addr, line.Codec{})
	listener := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 2)
	for i := range 24 {
		time.Sleep(50 * time.Millisecond) // the room's pace: a message every 50 ms
		if err := talker.Send([]byte(fmt.Sprintf("tick %d", i))); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	if got, err := collect(listener, 24, 5*time.Second); err != nil {
		t.Fatalf("the listening peer lost messages while the room talked: got %d: %v", len(got), err)
	}
	select {
	case err := <-left:
		t.Fatalf("a peer left while the room talked: %v", err)
	default:
	}

	// A frame dripped a byte every 100 ms never ends: cut.
	drip, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	go func() {
		for range 100 {
			if _, err := drip.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the dripper's pace
		}
	}()
	drip.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := drip.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the dripping peer was not cut within 5s")
	}
}
