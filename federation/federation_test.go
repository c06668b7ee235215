package federation_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/federation"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/internal/tlstest"
	"github.com/tetherkit/tether/transports/unix"
)

// Every test runs a real nats-server in this process.

func startNATS(t testing.TB, listen string) *server.Server {
	t.Helper()
	s, err := federation.StartServer(federation.ServerOptions{Listen: listen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// hub is a tether hub federated through NATS.
type hub struct {
	name  string
	srv   *core.Server
	fed   *federation.Federation
	nc    *nats.Conn
	addrs map[string]string // listener address per room
	codec core.Codec

	mu     sync.Mutex
	remote []string // "room hub/sender: msg" for each OnRemote
}

// newHub starts a hub serving each room on a unix socket with codec c,
// federated through the NATS server at url.
func newHub(t testing.TB, url, name string, c core.Codec, rooms ...string) *hub {
	t.Helper()
	return newHubWith(t, url, name, c, nil, rooms...)
}

// newHubWith is newHub with setup called on the hub before it serves.
func newHubWith(t testing.TB, url, name string, c core.Codec, setup func(*hub), rooms ...string) *hub {
	t.Helper()
	h := &hub{name: name, srv: &core.Server{}, addrs: map[string]string{}, codec: c}
	nc, err := nats.Connect(url, nats.NoEcho(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.ReconnectBufSize(1<<20), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	h.nc = nc
	h.fed = &federation.Federation{Conn: nc, Server: h.srv, Hub: name, Heartbeat: 50 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Warn, Output: os.Stderr}),
		OnRemote: func(room, hub, sender string, msg []byte) {
			h.mu.Lock()
			h.remote = append(h.remote, fmt.Sprintf("%s %s/%s: %s", room, hub, sender, msg))
			h.mu.Unlock()
		}}
	h.srv.OnMessage = func(p *core.Peer, msg []byte) { h.fed.Publish(p.Room(), p.Name(), p.Identity(), msg) }
	if setup != nil {
		setup(h)
	}
	for _, room := range rooms {
		h.serveRoom(t, room)
	}
	if err := h.fed.Join(rooms...); err != nil {
		t.Fatal(err)
	}
	if nc.IsConnected() {
		nc.Flush() // the subscriptions are at the server
	}
	t.Cleanup(h.stop)
	return h
}

// plainHub is a hub with no federation, serving one room.
func plainHub(t testing.TB, c core.Codec, room string) *hub {
	t.Helper()
	h := &hub{name: "plain", srv: &core.Server{}, addrs: map[string]string{}, codec: c}
	h.serveRoom(t, room)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// serveRoom serves room on a fresh unix socket with the hub's codec.
func (h *hub) serveRoom(t testing.TB, room string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := unix.Transport{}.Listen(context.Background(), filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	h.addrs[room] = l.Addr().String()
	go h.srv.ServeRoom(l, h.codec, room)
}

// stop ends the hub as a killed one would: its connections drop.
func (h *hub) stop() {
	h.fed.Close()
	h.nc.Close()
	h.srv.Close()
}

func (h *hub) client(t testing.TB, room string) *core.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := core.Dial(ctx, unix.Transport{}, h.addrs[room], h.codec, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (h *hub) waitPeers(t testing.TB, n int) {
	t.Helper()
	testwait.For(t, fmt.Sprintf("%d peers at hub %s", n, h.name), testwait.Timeout, func() bool { return len(h.srv.Peers()) == n })
}

func (h *hub) stats(room string) federation.RoomStats {
	for _, st := range h.fed.Stats() {
		if st.Room == room {
			return st
		}
	}
	return federation.RoomStats{}
}

func msg(sender string, seq int) []byte {
	return []byte(fmt.Sprintf("%s-%d %s\x00\xff", sender, seq, strings.Repeat("x", seq%200)))
}

// receive reads n messages and checks that they are, per sender, exactly
// msg(sender, 0..count-1) in order, from the senders named.
func receive(t *testing.T, cl *core.Client, senders []string, count int) {
	t.Helper()
	cl.Conn().SetReadDeadline(time.Now().Add(20 * time.Second))
	next := map[string]int{}
	for range len(senders) * count {
		m, err := cl.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", next, err)
		}
		sender, _, _ := strings.Cut(string(m), "-")
		if want := msg(sender, next[sender]); !bytes.Equal(m, want) {
			t.Fatalf("got %q, want %q (lost, reordered, altered, or from another room)", m, want)
		}
		next[sender]++
	}
	for _, s := range senders {
		if next[s] != count {
			t.Fatalf("from %s: %d messages, want %d", s, next[s], count)
		}
	}
}

func send(cl *core.Client, sender string, count int) {
	for seq := range count {
		cl.Send(msg(sender, seq))
	}
}

// TestTwoHubsOneRoom: clients on two hubs, on different codecs, all talk at
// once; each receives every other client's messages, per sender in order
// and byte-exact, and none of its own; a remote message names its hub.
func TestTwoHubsOneRoom(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	a := newHub(t, ns.ClientURL(), "east", length.Codec{}, "main")
	b := newHub(t, ns.ClientURL(), "west", length.Codec{}, "main")
	a1, a2, b1 := a.client(t, "main"), a.client(t, "main"), b.client(t, "main")
	a.waitPeers(t, 2)
	b.waitPeers(t, 1)
	const count = 300
	go send(a1, "a1", count)
	go send(a2, "a2", count)
	go send(b1, "b1", count)
	receive(t, a1, []string{"a2", "b1"}, count)
	receive(t, a2, []string{"a1", "b1"}, count)
	receive(t, b1, []string{"a1", "a2"}, count)
	sa, sb := a.stats("main"), b.stats("main")
	if sa.Sent != 2*count || sb.Sent != count || sa.Received != count || sb.Received != 2*count || sa.LostIn+sa.LostOut+sb.LostIn+sb.LostOut != 0 {
		t.Errorf("figures: east %+v, west %+v", sa, sb)
	}
	b.mu.Lock()
	first := b.remote[0]
	b.mu.Unlock()
	if !strings.HasPrefix(first, "main east/#") {
		t.Errorf("a remote message at west was reported as %q; want it from east/#N", first)
	}
}

// TestCodecsAcrossHubs: a line hub and a length hub share a room; messages
// pass byte-exact both ways, and one the line codec cannot carry is not
// delivered there (and logged), never split.
func TestCodecsAcrossHubs(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	a := newHub(t, ns.ClientURL(), "east", line.Codec{}, "main")
	b := newHub(t, ns.ClientURL(), "west", length.Codec{}, "main")
	la, lb := a.client(t, "main"), b.client(t, "main")
	a.waitPeers(t, 1)
	b.waitPeers(t, 1)
	lb.Send([]byte("two\nlines"))
	lb.Send([]byte("one line\r"))
	la.Send([]byte("from line"))
	la.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := la.Receive(); err != nil || string(m) != "one line\r" {
		t.Fatalf("at the line client: %q, %v; want only the message it can carry", m, err)
	}
	lb.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if m, err := lb.Receive(); err != nil || string(m) != "from line" {
		t.Fatalf("at the length client: %q, %v", m, err)
	}
}

// TestThreeHubsRoomsNeverLeak: three hubs, two rooms each; every client
// gets its room's messages from all hubs and nothing from the other room.
func TestThreeHubsRoomsNeverLeak(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	var hubs []*hub
	for _, name := range []string{"a", "b", "c"} {
		hubs = append(hubs, newHub(t, ns.ClientURL(), name, length.Codec{}, "red", "blue"))
	}
	clients := map[string]*core.Client{}
	for _, h := range hubs {
		for _, room := range []string{"red", "blue"} {
			clients[h.name+room] = h.client(t, room)
		}
		h.waitPeers(t, 2)
	}
	const count = 100
	for name, cl := range clients {
		go send(cl, name, count)
	}
	for name, cl := range clients {
		room := strings.TrimLeft(name, "abc")
		var others []string
		for other := range clients {
			if other != name && strings.HasSuffix(other, room) {
				others = append(others, other)
			}
		}
		receive(t, cl, others, count)
	}
}

// TestNATSRestartedUnderLoad: the NATS server is stopped and started again
// while a hub sends; the room at the other hub gets a subsequence of the
// messages, in order, never a duplicate, and what never arrived is exactly
// what the hubs counted as lost.
func TestNATSRestartedUnderLoad(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	addr := ns.Addr().String()
	a := newHub(t, ns.ClientURL(), "east", length.Codec{}, "main")
	b := newHub(t, ns.ClientURL(), "west", length.Codec{}, "main")
	sender, receiver := a.client(t, "main"), b.client(t, "main")
	a.waitPeers(t, 1)
	b.waitPeers(t, 1)

	const total = 6000
	got := make(chan int, total)
	go func() {
		defer close(got)
		for {
			m, err := receiver.Receive()
			if err != nil {
				return
			}
			var seq int
			fmt.Sscanf(string(m), "east-%d", &seq)
			got <- seq
		}
	}()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for seq := range total {
			sender.Send(msg("east", seq))
			if seq%200 == 0 {
				sender.Flush()
			}
			if seq%10 == 0 {
				time.Sleep(time.Millisecond) // about 5,000 messages a second
			}
			if seq == total/3 {
				t.Logf("stopping NATS at %v", time.Now().Format("15:04:05.000"))
				ns.Shutdown()
				ns.WaitForShutdown()
			}
			if seq == total/2 {
				restarted, err := federation.StartServer(federation.ServerOptions{Listen: addr})
				if err != nil {
					t.Error(err)
					return
				}
				t.Cleanup(restarted.Shutdown)
				t.Logf("restarted NATS at %v", time.Now().Format("15:04:05.000"))
			}
		}
		sender.Flush()
	}()
	testwait.Recv(t, "the sender to finish", 60*time.Second, sent)

	// Wait until every message is accounted for: received, or counted lost
	// by one hub or the other (a heartbeat counts a trailing loss).
	received, last := 0, -1
	deadline := time.After(30 * time.Second)
	for {
		counted := a.stats("main").LostOut + b.stats("main").LostIn
		if received+int(counted) == total {
			break
		}
		select {
		case seq := <-got:
			if seq != last+1 {
				t.Logf("gap: %d after %d (at %v)", seq, last, time.Now().Format("15:04:05.000"))
			}
			if seq <= last {
				t.Fatalf("message %d arrived after %d: reordered or duplicated", seq, last)
			}
			last = seq
			received++
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("received %d, counted lost %d (east %+v, west %+v): %d of %d unaccounted for",
				received, counted, a.stats("main"), b.stats("main"), total-received-int(counted), total)
		}
	}
	st := b.stats("main")
	t.Logf("sent %d: received %d, lost %d (east could not publish %d, west saw %d never arrive)",
		total, received, total-received, a.stats("main").LostOut, st.LostIn)
	if received == total {
		t.Log("nothing was lost: the reconnect buffer held the whole outage")
	}
	if received < total/2 {
		t.Errorf("only %d of %d arrived: federation did not come back", received, total)
	}
}

// TestRoomsGoOnWithoutNATS: hubs start while NATS is down; each room works
// locally; once NATS is up, federation joins them by itself, and what was
// sent meanwhile (within the buffer) is delivered.
func TestRoomsGoOnWithoutNATS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a := newHub(t, "nats://"+addr, "east", length.Codec{}, "main")
	b := newHub(t, "nats://"+addr, "west", length.Codec{}, "main")
	a1, a2, b1 := a.client(t, "main"), a.client(t, "main"), b.client(t, "main")
	a.waitPeers(t, 2)
	b.waitPeers(t, 1)
	a1.Send(msg("a1", 0))
	receive(t, a2, []string{"a1"}, 1) // the local room works

	startNATS(t, addr)
	testwait.For(t, "both hubs to reach NATS", 20*time.Second, func() bool { return a.nc.IsConnected() && b.nc.IsConnected() })
	a.nc.Flush()
	b.nc.Flush()
	// a1's message was published while NATS was away: buffered, then
	// delivered when both were subscribed? West subscribed only on
	// reconnect, so the order of the two is a race; the message may count as
	// lost, never vanish.
	a1.Send(msg("a1", 1))
	b1.Conn().SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		m, err := b1.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(m, msg("a1", 1)) {
			break
		}
		if !bytes.Equal(m, msg("a1", 0)) {
			t.Fatalf("west got %q", m)
		}
	}
	b1.Send(msg("b1", 0))
	receive(t, a1, []string{"b1"}, 1)
}

// TestSlowHubCountsWhatItDropped: a hub whose room cannot keep up (a
// client that reads nothing, until the stall timeout evicts it) falls
// behind NATS; what NATS dropped for it is counted, so that every message
// sent is either received or counted lost there.
func TestSlowHubCountsWhatItDropped(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	a := newHub(t, ns.ClientURL(), "east", length.Codec{}, "main")
	b := newHubWith(t, ns.ClientURL(), "west", length.Codec{}, func(h *hub) {
		h.srv.StallTimeout = 300 * time.Millisecond
		h.fed.MaxPending = 50
	}, "main")
	sender := a.client(t, "main")
	stuck := b.client(t, "main") // never reads
	_ = stuck
	a.waitPeers(t, 1)
	b.waitPeers(t, 1)
	const total = 20000
	big := bytes.Repeat([]byte("z"), 1000)
	for range total {
		sender.Send(big)
	}
	sender.Flush()
	testwait.For(t, "east to publish everything", 20*time.Second, func() bool { return a.stats("main").Sent == total })
	testwait.For(t, "every message received or counted lost at west", 20*time.Second, func() bool {
		st := b.stats("main")
		return st.Received+st.LostIn == total
	})
	st := b.stats("main")
	if st.LostIn == 0 {
		t.Errorf("west kept up with %d messages behind a client that reads nothing: %+v", total, st)
	}
	t.Logf("west: %+v", st)
}

// TestHubKilledOthersContinue: one of three hubs goes away; the other two
// go on.
func TestHubKilledOthersContinue(t *testing.T) {
	ns := startNATS(t, "127.0.0.1:0")
	a := newHub(t, ns.ClientURL(), "a", length.Codec{}, "main")
	b := newHub(t, ns.ClientURL(), "b", length.Codec{}, "main")
	c := newHub(t, ns.ClientURL(), "c", length.Codec{}, "main")
	ca, cb := a.client(t, "main"), b.client(t, "main")
	c.client(t, "main")
	a.waitPeers(t, 1)
	b.waitPeers(t, 1)
	c.waitPeers(t, 1)
	c.stop()
	const count = 200
	go send(ca, "ca", count)
	go send(cb, "cb", count)
	receive(t, ca, []string{"cb"}, count)
	receive(t, cb, []string{"ca"}, count)
}

// TestMisuse: Join without a connection or server, Publish to a room not
// joined, Close twice.
func TestMisuse(t *testing.T) {
	var f federation.Federation
	if err := f.Join("main"); err == nil {
		t.Error("Join without Conn and Server succeeded")
	}
	if err := f.Publish("main", "x", "", []byte("m")); err == nil || !strings.Contains(err.Error(), "not joined") {
		t.Errorf("Publish before Join: %v", err)
	}
	if f.Close() != nil || f.Close() != nil {
		t.Error("Close is not idempotent")
	}
	if _, err := federation.StartServer(federation.ServerOptions{Listen: "nowhere"}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("StartServer with a bad address: %v", err)
	}
	if _, err := federation.StartServer(federation.ServerOptions{Listen: ":0", Routes: []string{"nats-route://127.0.0.1:1"}}); err == nil || !errors.Is(err, err) || !strings.Contains(err.Error(), "cluster address") {
		t.Errorf("routes without a cluster address: %v", err)
	}
}

// TestEmbeddedServerTLS: an embedded server given TLS takes only TLS
// connections, and with client CAs only hubs that show a certificate they
// issued; a message passes over such a connection.
func TestEmbeddedServerTLS(t *testing.T) {
	pki := tlstest.New(t)
	cert, key := pki.Issue(t, "nats.test", true)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	cas := x509.NewCertPool()
	cas.AppendCertsFromPEM(pem)
	s, err := federation.StartServer(federation.ServerOptions{Listen: "127.0.0.1:0",
		TLS: &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: cas, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	url := s.ClientURL()
	if !strings.HasPrefix(url, "tls://") {
		t.Fatalf("ClientURL %q: want tls://", url)
	}
	hubCert, hubKey := pki.Issue(t, "west", false)
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"no TLS", nil},
		{"no client certificate", []nats.Option{nats.RootCAs(pki.CA)}},
	} {
		nc, err := nats.Connect(strings.Replace(url, "tls://", "nats://", 1), append(tc.opts, nats.Timeout(5*time.Second))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", tc.name)
		}
	}
	recv, err := nats.Connect(url, nats.RootCAs(pki.CA), nats.ClientCert(hubCert, hubKey))
	if err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}
	defer recv.Close()
	sub, err := recv.SubscribeSync("tether.test")
	if err != nil {
		t.Fatal(err)
	}
	recv.Flush()
	send, err := nats.Connect(url, nats.RootCAs(pki.CA), nats.ClientCert(hubCert, hubKey))
	if err != nil {
		t.Fatal(err)
	}
	defer send.Close()
	send.Publish("tether.test", []byte("over TLS"))
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil || string(m.Data) != "over TLS" {
		t.Fatalf("the message over TLS: %v, %v", m, err)
	}
	if !recv.TLSRequired() {
		t.Error("the server does not say TLS is required")
	}
}
