// Package federation joins the rooms of tether hubs on many hosts through
// NATS (github.com/nats-io/nats.go): every message a client sends in a room
// reaches the clients of the same room on every federated hub, in the
// sender's order and byte-exact whatever codec each side speaks, and is
// never echoed back to the hub it came from.
//
// A room's messages travel on the subject "<Subject>.<room>". The sender's
// name and identity and the origin hub travel in headers; so does a
// sequence number per origin and room, which is how losses are seen:
//
//   - NATS core delivers at most once. A message is lost when NATS is
//     unreachable for longer than the client's reconnect buffer holds
//     (counted by the sending hub as LostOut), and when a hub is not
//     subscribed or falls behind and NATS drops what it cannot take
//     (counted by the receiving hub as LostIn, from the gap in the sender's
//     sequence). Every hub sends a heartbeat with its latest sequence per
//     room, so a loss is counted within a heartbeat even when the sender
//     falls silent after it.
//   - Nothing is lost otherwise: while NATS is up and no hub is overloaded,
//     every message arrives, once and in order.
//
// While NATS is away each hub's rooms go on locally; federation resumes by
// itself when it returns.
package federation

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/tetherkit/tether/core"
)

// DefaultSubject is the subject prefix of a Federation that sets none.
const DefaultSubject = "tether.rooms"

// DefaultMaxPending is the MaxPending of a Federation that sets none.
const DefaultMaxPending = 65536

// DefaultHeartbeat is how often a hub announces its latest sequence per
// room, so that other hubs count a loss even when it falls silent.
const DefaultHeartbeat = time.Second

// The headers a federated message carries.
const (
	HeaderHub       = "Tether-Hub"       // the origin hub's name
	HeaderInstance  = "Tether-Instance"  // the origin process, random per run
	HeaderSender    = "Tether-Sender"    // the sender's name in its room
	HeaderIdentity  = "Tether-Identity"  // the sender's transport identity
	HeaderSeq       = "Tether-Seq"       // the origin's sequence number in the room
	HeaderHeartbeat = "Tether-Heartbeat" // "1": no message, only the latest sequence
)

// Federation carries a hub's rooms over NATS. Set the fields, then call
// Join; Publish each message a local client sends (a Server's OnMessage).
type Federation struct {
	// Conn is the NATS connection (required). With nats.NoEcho the server
	// does not send a hub its own messages; without it they are dropped on
	// arrival.
	Conn *nats.Conn
	// Server receives the other hubs' messages, with BroadcastFrom.
	Server *core.Server
	// Hub is this hub's name, shown before remote senders ("east/#3").
	Hub string
	// Subject is the subject prefix (default DefaultSubject).
	Subject string
	// Heartbeat is the announcement period (default DefaultHeartbeat).
	Heartbeat time.Duration
	// MaxPending bounds the messages from other hubs that wait, per room,
	// while the room is slower than NATS (a local client holds it back);
	// past it NATS drops them, and they are counted lost (default
	// DefaultMaxPending).
	MaxPending int
	// Logger receives losses, under the name "federation".
	Logger hclog.Logger
	// OnRemote, when set, is called for each message from another hub once
	// the room has it; msg is only valid during the call.
	OnRemote func(room, hub, sender string, msg []byte)

	instance string
	log      hclog.Logger
	mu       sync.Mutex
	rooms    map[string]*room
	stop     chan struct{}
	done     chan struct{}
	closed   bool
}

// room is one federated room.
type room struct {
	name    string
	subject string
	sub     *nats.Subscription

	pubMu  sync.Mutex // orders sequence numbers and publishes
	seq    uint64     // the last sequence number published
	out    *nats.Msg  // reused for every publish, under pubMu
	outErr time.Time  // when a failed publish was last logged

	origins map[string]*origin // by instance; only the subscription's goroutine touches it

	sent, received, lostOut, lostIn atomic.Uint64
}

// origin is what a room knows of another hub's sequence.
type origin struct {
	hub      string
	last     uint64
	lastSeen time.Time
}

// RoomStats is a federated room's figures; the counts only grow.
type RoomStats struct {
	Room     string
	Sent     uint64 // messages published to the other hubs
	Received uint64 // messages from other hubs, given to the room
	LostOut  uint64 // messages this hub could not publish (NATS away longer than the buffer holds)
	LostIn   uint64 // messages other hubs published that never arrived here
}

// Join federates the named rooms: it subscribes to each and starts the
// heartbeats. It may be called again for more rooms.
func (f *Federation) Join(rooms ...string) error {
	if f.Conn == nil || f.Server == nil {
		return errors.New("federation: Join needs Conn and Server")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("federation: closed")
	}
	if f.rooms == nil {
		f.init()
	}
	for _, name := range rooms {
		if _, ok := f.rooms[name]; ok {
			continue
		}
		r := &room{name: name, subject: f.subject() + "." + name, origins: map[string]*origin{}}
		r.out = &nats.Msg{Subject: r.subject, Header: nats.Header{}}
		r.out.Header.Set(HeaderHub, f.Hub)
		r.out.Header.Set(HeaderInstance, f.instance)
		sub, err := f.Conn.Subscribe(r.subject, func(m *nats.Msg) { f.receive(r, m) })
		if err != nil {
			return fmt.Errorf("federation: subscribing to room %s: %w", name, err)
		}
		pending := f.MaxPending
		if pending <= 0 {
			pending = DefaultMaxPending
		}
		sub.SetPendingLimits(pending, -1)
		r.sub = sub
		f.rooms[name] = r
	}
	return nil
}

func (f *Federation) init() {
	var b [8]byte
	rand.Read(b[:])
	f.instance = hex.EncodeToString(b[:])
	f.log = f.Logger
	if f.log == nil {
		f.log = hclog.NewNullLogger()
	}
	f.log = f.log.Named("federation")
	f.rooms = map[string]*room{}
	f.stop, f.done = make(chan struct{}), make(chan struct{})
	go f.beat()
}

func (f *Federation) subject() string {
	if f.Subject != "" {
		return f.Subject
	}
	return DefaultSubject
}

func (f *Federation) heartbeat() time.Duration {
	if f.Heartbeat > 0 {
		return f.Heartbeat
	}
	return DefaultHeartbeat
}

func (f *Federation) room(name string) *room {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rooms[name]
}

// Publish sends a local message of a federated room to the other hubs.
// While NATS is away, the connection's reconnect buffer holds it; when
// that is full the message is counted as lost, logged, and the error
// returned. A room that was not joined is an error.
func (f *Federation) Publish(roomName, sender, identity string, msg []byte) error {
	r := f.room(roomName)
	if r == nil {
		return fmt.Errorf("federation: room %q was not joined", roomName)
	}
	r.pubMu.Lock()
	defer r.pubMu.Unlock()
	r.out.Header.Set(HeaderSender, sender)
	r.out.Header.Set(HeaderIdentity, identity)
	r.out.Header.Set(HeaderSeq, strconv.FormatUint(r.seq+1, 10))
	r.out.Header.Del(HeaderHeartbeat)
	r.out.Data = msg
	err := f.Conn.PublishMsg(r.out)
	r.out.Data = nil
	if err != nil {
		lost := r.lostOut.Add(1)
		if time.Since(r.outErr) >= time.Second {
			r.outErr = time.Now()
			why := "NATS is away and the reconnect buffer is full"
			if errors.Is(err, nats.ErrMaxPayload) {
				why = "the message is larger than the NATS server's max_payload"
			}
			f.log.Warn("a message was not federated: "+why, "room", r.name, "lost_so_far", lost, "error", err)
		}
		return fmt.Errorf("federation: room %s: %w", r.name, err)
	}
	r.seq++
	r.sent.Add(1)
	return nil
}

// beat announces every room's latest sequence, and forgets origins not
// heard from for a while.
func (f *Federation) beat() {
	defer close(f.done)
	t := time.NewTicker(f.heartbeat())
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		rooms := make([]*room, 0, len(f.rooms))
		for _, r := range f.rooms {
			rooms = append(rooms, r)
		}
		f.mu.Unlock()
		for _, r := range rooms {
			r.pubMu.Lock()
			if r.seq > 0 {
				r.out.Header.Set(HeaderSeq, strconv.FormatUint(r.seq, 10))
				r.out.Header.Set(HeaderHeartbeat, "1")
				r.out.Header.Del(HeaderSender)
				r.out.Header.Del(HeaderIdentity)
				f.Conn.PublishMsg(r.out) // a lost heartbeat only delays a count
			}
			r.pubMu.Unlock()
		}
	}
}

// receive takes one message or heartbeat from another hub.
func (f *Federation) receive(r *room, m *nats.Msg) {
	inst := m.Header.Get(HeaderInstance)
	if inst == f.instance || inst == "" {
		return // our own (a connection without NoEcho), or not tether's
	}
	seq, err := strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
	if err != nil || seq == 0 {
		return
	}
	hub := m.Header.Get(HeaderHub)
	heartbeat := m.Header.Get(HeaderHeartbeat) != ""
	now := time.Now()
	o := r.origins[inst]
	switch {
	case o == nil:
		// First word from this origin: what it sent before is not ours.
		o = &origin{hub: hub, last: seq, lastSeen: now}
		if !heartbeat {
			o.last = seq - 1
		}
		r.origins[inst] = o
		f.log.Debug("first message from another hub", "room", r.name, "hub", hub, "instance", inst, "seq", seq, "heartbeat", heartbeat)
		f.forgetSilent(r, now)
	case seq > o.last+1 || (heartbeat && seq > o.last):
		gap := seq - o.last
		if !heartbeat {
			gap--
		}
		total := r.lostIn.Add(gap)
		f.log.Warn("messages from another hub never arrived (NATS was away, or this hub fell behind)", "room", r.name, "hub", hub, "lost", gap, "lost_in_room", total)
	case seq <= o.last && !heartbeat:
		return // already seen
	}
	o.lastSeen = now
	if seq > o.last {
		o.last = seq
	}
	if heartbeat {
		return
	}
	r.received.Add(1)
	sender := m.Header.Get(HeaderSender)
	if err := f.Server.BroadcastFrom(r.name, hub+"/"+sender, m.Data); err != nil && !errors.Is(err, core.ErrServerClosed) {
		f.log.Warn("a federated message reached no local client", "room", r.name, "from", hub+"/"+sender, "error", err)
	}
	if f.OnRemote != nil {
		f.OnRemote(r.name, hub, sender, m.Data)
	}
}

// forgetSilent drops the origins of a room not heard from for a hundred
// heartbeats: hubs that have gone.
func (f *Federation) forgetSilent(r *room, now time.Time) {
	for inst, o := range r.origins {
		if now.Sub(o.lastSeen) > 100*f.heartbeat() {
			delete(r.origins, inst)
		}
	}
}

// Stats returns every federated room's figures, sorted by room.
func (f *Federation) Stats() []RoomStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]RoomStats, 0, len(f.rooms))
	for _, r := range f.rooms {
		out = append(out, RoomStats{Room: r.name, Sent: r.sent.Load(), Received: r.received.Load(), LostOut: r.lostOut.Load(), LostIn: r.lostIn.Load()})
	}
	slices.SortFunc(out, func(a, b RoomStats) int {
		if a.Room < b.Room {
			return -1
		}
		if a.Room > b.Room {
			return 1
		}
		return 0
	})
	return out
}

// Close stops the heartbeats and unsubscribes; the connection is the
// caller's. It is idempotent.
func (f *Federation) Close() error {
	f.mu.Lock()
	if f.closed || f.rooms == nil {
		f.closed = true
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	rooms := f.rooms
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	for _, r := range rooms {
		r.sub.Unsubscribe()
	}
	return nil
}
