package metrics_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/federation"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/metrics"
	"github.com/tetherkit/tether/transports/unix"
)

// scrape fetches /metrics and returns each sample's value by its name and
// labels as written ("tether_peers{room=\"main\",transport=\"unix\"}").
func scrape(t *testing.T, addr net.Addr) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// expect waits until every sample in want has its value at a scrape.
func expect(t *testing.T, addr net.Addr, want map[string]float64) {
	t.Helper()
	var got map[string]float64
	testwait.For(t, fmt.Sprintf("the metrics %v", want), testwait.Timeout, func() bool {
		got = scrape(t, addr)
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})
}

func serveRoom(t *testing.T, srv *core.Server, room string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := unix.Transport{}.Listen(context.Background(), filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeRoom(l, length.Codec{}, room)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func dial(t *testing.T, addr string) *core.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := core.Dial(ctx, unix.Transport{}, addr, length.Codec{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestHubMetrics: the counters a scrape shows match the traffic sent:
// messages and bytes per room, deliveries, peers per room and transport,
// a refusal for the connection limit, a clean leave and a disconnect for
// an oversized frame.
func TestHubMetrics(t *testing.T) {
	srv := &core.Server{MaxConns: 4, MaxFrame: 1000}
	hub := metrics.NewHub(srv, nil, nil)
	srv.OnRefuse = func(_ net.Addr, err error) { hub.Refused(err) }
	srv.OnLeave = func(_ *core.Peer, err error) { hub.Left(err) }
	main, vms := serveRoom(t, srv, ""), serveRoom(t, srv, "vms")
	hs, addr, err := metrics.Serve("127.0.0.1:0", metrics.Registry(hub))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()

	a, b, c, v := dial(t, main), dial(t, main), dial(t, main), dial(t, vms)
	testwait.For(t, "4 peers", testwait.Timeout, func() bool { return len(srv.Peers()) == 4 })
	for i := range 100 {
		a.Send([]byte(fmt.Sprintf("message %02d", i))) // 10 bytes
	}
	for range 5 {
		v.Send([]byte("alone"))
	}
	a.Flush()
	v.Flush()
	for _, r := range []*core.Client{b, c} {
		r.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
		for range 100 {
			if _, err := r.Receive(); err != nil {
				t.Fatal(err)
			}
		}
	}
	expect(t, addr, map[string]float64{
		`tether_messages_received_total{room="main"}`:  100,
		`tether_received_bytes_total{room="main"}`:     1000,
		`tether_messages_delivered_total{room="main"}`: 200,
		`tether_delivered_bytes_total{room="main"}`:    2000,
		`tether_messages_received_total{room="vms"}`:   5,
		`tether_messages_delivered_total{room="vms"}`:  0,
		`tether_peers{room="main",transport="unix"}`:   3,
		`tether_peers{room="vms",transport="unix"}`:    1,
		`tether_connections`:                           4,
	})

	// A fifth client is refused; one leaves cleanly; one sends a frame over
	// the limit.
	extra, err := net.Dial("unix", main)
	if err != nil {
		t.Fatal(err)
	}
	extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(extra) // the hub closes it
	extra.Close()
	c.Close()
	testwait.For(t, "3 peers", testwait.Timeout, func() bool { return len(srv.Peers()) == 3 })
	bad, err := net.Dial("unix", main)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 5000)
	bad.Write(hdr[:])
	expect(t, addr, map[string]float64{
		`tether_refusals_total{reason="too_many_peers"}`:     1,
		`tether_disconnects_total{reason="left"}`:            1,
		`tether_disconnects_total{reason="frame_too_large"}`: 1,
		`tether_peers{room="main",transport="unix"}`:         2,
		`tether_messages_received_total{room="main"}`:        100, // counts stay after their clients leave
	})
	if got := scrape(t, addr); got["go_goroutines"] == 0 || got["process_open_fds"] == 0 {
		t.Error("the Go runtime's and the process's metrics are missing")
	}
}

// TestFederationMetrics: each hub's federation counters match what crossed
// between them, and the NATS connection shows up.
func TestFederationMetrics(t *testing.T) {
	ns, err := federation.StartServer(federation.ServerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	var addrs []net.Addr
	var clients []*core.Client
	for _, name := range []string{"east", "west"} {
		nc, err := nats.Connect(ns.ClientURL(), nats.NoEcho())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		srv := &core.Server{}
		fed := &federation.Federation{Conn: nc, Server: srv, Hub: name}
		srv.OnMessage = func(p *core.Peer, msg []byte) { fed.Publish(p.Room(), p.Name(), p.Identity(), msg) }
		addr := serveRoom(t, srv, "")
		if err := fed.Join(core.DefaultRoom); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		defer fed.Close()
		hs, maddr, err := metrics.Serve("127.0.0.1:0", metrics.Registry(metrics.NewHub(srv, fed, nc)))
		if err != nil {
			t.Fatal(err)
		}
		defer hs.Close()
		addrs = append(addrs, maddr)
		clients = append(clients, dial(t, addr))
	}
	testwait.For(t, "both clients in their rooms", testwait.Timeout, func() bool {
		return scrape(t, addrs[0])[`tether_peers{room="main",transport="unix"}`] == 1 && scrape(t, addrs[1])[`tether_peers{room="main",transport="unix"}`] == 1
	})
	for range 10 {
		clients[0].Send([]byte("across"))
	}
	clients[0].Flush()
	clients[1].Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 10 {
		if _, err := clients[1].Receive(); err != nil {
			t.Fatal(err)
		}
	}
	expect(t, addrs[0], map[string]float64{
		`tether_federation_messages_sent_total{room="main"}`:                 10,
		`tether_federation_messages_lost_total{direction="out",room="main"}`: 0,
		`tether_federation_nats_connected`:                                   1,
	})
	expect(t, addrs[1], map[string]float64{
		`tether_federation_messages_received_total{room="main"}`:            10,
		`tether_federation_messages_lost_total{direction="in",room="main"}`: 0,
		`tether_messages_received_total{room="main"}`:                       10,
		`tether_messages_delivered_total{room="main"}`:                      10,
	})
}
