package core

import (
	"slices"
	"sync/atomic"
)

// DefaultRoom is the room of a [Server] whose Room field is empty.
const DefaultRoom = "main"

// room is one room of a server: the peers its messages reach, and the
// figures of those that have left.
type room struct {
	name    string
	members atomic.Pointer[[]*Peer] // a snapshot broadcasts read without locking
	done    counters                // peers that have left, and messages given with BroadcastFrom
}

// counters are a room's or a peer's message figures. A peer's are written
// only by its read loop, so a count is a plain load and store, not a locked
// add: counting costs the relay next to nothing.
type counters struct {
	msgsIn, bytesIn, deliveries, bytesOut atomic.Uint64
}

// count records one message of size bytes queued for n receivers, from the
// counters' only writer.
func (c *counters) count(size, n int) {
	c.msgsIn.Store(c.msgsIn.Load() + 1)
	c.bytesIn.Store(c.bytesIn.Load() + uint64(size))
	if n > 0 {
		c.deliveries.Store(c.deliveries.Load() + uint64(n))
		c.bytesOut.Store(c.bytesOut.Load() + uint64(n*size))
	}
}

// countShared records a message from any goroutine.
func (c *counters) countShared(size, n int) {
	c.msgsIn.Add(1)
	c.bytesIn.Add(uint64(size))
	c.deliveries.Add(uint64(n))
	c.bytesOut.Add(uint64(n * size))
}

// addTo adds c's figures to st.
func (c *counters) addTo(st *RoomStats) {
	st.MessagesIn += c.msgsIn.Load()
	st.BytesIn += c.bytesIn.Load()
	st.Deliveries += c.deliveries.Load()
	st.BytesOut += c.bytesOut.Load()
}

// fold moves a departing peer's figures into its room's.
func (c *counters) fold(into *counters) {
	into.msgsIn.Add(c.msgsIn.Load())
	into.bytesIn.Add(c.bytesIn.Load())
	into.deliveries.Add(c.deliveries.Load())
	into.bytesOut.Add(c.bytesOut.Load())
}

// RoomStats is a snapshot of one room's figures. The counts only grow over
// the server's life.
type RoomStats struct {
	Room  string
	Peers int // peers in the room now
	// MessagesIn and BytesIn count the messages the room's clients sent,
	// and those given with BroadcastFrom (the host's, a federation's).
	MessagesIn, BytesIn uint64
	// Deliveries counts messages queued for a receiver, one per receiver;
	// BytesOut their payload bytes.
	Deliveries, BytesOut uint64
	// Queued is the number of messages waiting in the room's receivers'
	// queues now.
	Queued int
}

// roomLocked returns the room of that name, made on first use.
func (s *Server) roomLocked(name string) *room {
	if r, ok := s.rooms[name]; ok {
		return r
	}
	r := &room{name: name}
	r.members.Store(new([]*Peer))
	s.rooms[name] = r
	return r
}

// roomName maps "" to the server's default room.
func (s *Server) roomName(name string) string {
	switch {
	case name != "":
		return name
	case s.Room != "":
		return s.Room
	}
	return DefaultRoom
}

// lookupRoom returns the room of that name ("" the default), or nil when no
// listener has made it.
func (s *Server) lookupRoom(name string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[s.roomName(name)]
}

// RoomStats returns every room's figures, sorted by name.
func (s *Server) RoomStats() []RoomStats {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RoomStats, 0, len(s.rooms))
	for _, r := range s.rooms {
		st := RoomStats{Room: r.name, Peers: len(*r.members.Load())}
		r.done.addTo(&st)
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RoomStats) int {
		switch {
		case a.Room < b.Room:
			return -1
		case a.Room > b.Room:
			return 1
		}
		return 0
	})
	for p := range s.peers {
		i, _ := slices.BinarySearchFunc(out, p.room.name, func(st RoomStats, name string) int {
			switch {
			case st.Room < name:
				return -1
			case st.Room > name:
				return 1
			}
			return 0
		})
		p.ctr.addTo(&out[i])
		p.mu.Lock()
		out[i].Queued += len(p.queue)
		p.mu.Unlock()
	}
	return out
}

// Room returns the name of the peer's room.
func (p *Peer) Room() string {
	if p.room == nil {
		return ""
	}
	return p.room.name
}
