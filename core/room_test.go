package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/unix"
)

// serveRoom starts srv on a fresh unix listener for the named room.
func serveRoom(t *testing.T, srv *core.Server, c core.Codec, room string) string {
	t.Helper()
	tr := unix.Transport{}
	l, err := tr.Listen(context.Background(), listenAddr(t, tr))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeRoom(l, c, room) }()
	t.Cleanup(func() {
		srv.Close()
		if err := testwait.Recv(t, "ServeRoom to return after Close", testwait.Timeout, errc); !errors.Is(err, core.ErrServerClosed) {
			t.Errorf("ServeRoom returned %v, want ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

// TestRoomsNeverMix: two rooms in one server, one per codec, talk at once; every message reaches exactly its own room's
// other clients, in order and byte-exact. The host's Broadcast reaches the
// server's Room only; BroadcastFrom reaches the room named, under the
// sender's name.
func TestRoomsNeverMix(t *testing.T) {
	srv := &core.Server{Room: "lobby"}
	addrs := map[string]string{
		"lobby": serveRoom(t, srv, line.Codec{}, ""),
		"vms":   serveRoom(t, srv, length.Codec{}, "vms"),
	}
	codecs := map[string]core.Codec{"lobby": line.Codec{}, "vms": length.Codec{}}
	const perRoom, count = 3, 200
	clients := map[string][]*core.Client{}
	for _, room := range []string{"lobby", "vms"} {
		for range perRoom {
			clients[room] = append(clients[room], dial(t, unix.Transport{}, addrs[room], codecs[room]))
		}
	}
	waitPeers(t, srv, 2*perRoom)
	for _, p := range srv.Peers() {
		if p.Room() != "lobby" && p.Room() != "vms" {
			t.Fatalf("peer %s in room %q", p, p.Room())
		}
	}
	// Sender i of room r sends as s<i>; ids are distinct across rooms, so
	// a message that crossed would show up as an unexpected sender.
	ids := map[string][]int{"lobby": {0, 1, 2}, "vms": {10, 11, 12}}
	for room, cls := range clients {
		for k, cl := range cls {
			go func() {
				for seq := range count {
					cl.Send(payload(ids[room][k], seq))
				}
			}()
		}
	}
	for room, cls := range clients {
		for k, cl := range cls {
			got, err := collect(cl, (perRoom-1)*count, 20*time.Second)
			if err != nil {
				t.Fatalf("room %s client %d: %v", room, k, err)
			}
			var others []int
			for j, id := range ids[room] {
				if j != k {
					others = append(others, id)
				}
			}
			if err := checkFanIn(got, others, count); err != nil {
				t.Fatalf("room %s client %d: %v", room, k, err)
			}
		}
	}

	if err := srv.Broadcast([]byte("to the lobby")); err != nil {
		t.Fatal(err)
	}
	if err := srv.BroadcastFrom("vms", "east/#4", []byte("to the vms")); err != nil {
		t.Fatal(err)
	}
	if err := srv.BroadcastFrom("nobody-serves-this", "x", []byte("lost?")); err != nil {
		t.Fatalf("a room with no listener: %v, want nil (nobody to reach)", err)
	}
	for room, want := range map[string]string{"lobby": "to the lobby", "vms": "to the vms"} {
		for _, cl := range clients[room] {
			got, err := collect(cl, 1, 5*time.Second)
			if err != nil || string(got[0]) != want {
				t.Fatalf("room %s: got %q, %v; want %q and nothing from the other room", room, got, err, want)
			}
		}
	}
}

// TestChatNamesRemoteSenders: with Chat, a message given with BroadcastFrom
// carries its sender's name.
func TestChatNamesRemoteSenders(t *testing.T) {
	srv := &core.Server{Chat: true}
	addr := serveRoom(t, srv, line.Codec{}, "")
	cl := dial(t, unix.Transport{}, addr, line.Codec{})
	waitPeers(t, srv, 1)
	srv.BroadcastFrom(core.DefaultRoom, "west/#2", []byte("hello"))
	got, err := collect(cl, 1, 5*time.Second)
	if err != nil || string(got[0]) != "west/#2: hello" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestRoomStatsCount: a room's figures count what its clients sent and what
// was queued for its receivers, and keep counting after clients leave.
func TestRoomStatsCount(t *testing.T) {
	srv := &core.Server{}
	addr := serveRoom(t, srv, length.Codec{}, "")
	other := serveRoom(t, srv, length.Codec{}, "quiet")
	var cls []*core.Client
	for range 3 {
		cls = append(cls, dial(t, unix.Transport{}, addr, length.Codec{}))
	}
	dial(t, unix.Transport{}, other, length.Codec{})
	waitPeers(t, srv, 4)
	const k, size = 50, 100
	msg := make([]byte, size)
	for range k {
		if err := cls[0].Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range cls[1:] {
		if _, err := collect(cl, k, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	want := core.RoomStats{Room: core.DefaultRoom, Peers: 3, MessagesIn: k, BytesIn: k * size, Deliveries: 2 * k, BytesOut: 2 * k * size}
	check := func(when string, want core.RoomStats) {
		t.Helper()
		var got []core.RoomStats
		testwait.For(t, fmt.Sprintf("room figures %+v %s", want, when), testwait.Timeout, func() bool {
			got = srv.RoomStats()
			return len(got) == 2 && got[0] == want && got[1] == core.RoomStats{Room: "quiet", Peers: 1}
		})
	}
	check("after the messages", want)
	for _, cl := range cls {
		cl.Close()
	}
	want.Peers = 0
	check("after every client left", want)
	srv.BroadcastFrom("", "host", msg) // nobody to reach: counted in, not delivered
	want.MessagesIn++
	want.BytesIn += size
	check("after a broadcast to an empty room", want)
}
