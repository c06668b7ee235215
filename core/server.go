package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults for the zero values of [Server]'s fields.
const (
	DefaultStallTimeout     = 10 * time.Second
	DefaultQueueLen         = 1024
	DefaultQueueBytes       = 4 << 20
	DefaultMaxConns         = 4096
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReadBudget       = 256 << 20
	// DefaultLinger bounds how long a graceful close reads (and drops) what
	// a peer still sends after the server's last write, so that closing does
	// not reset a connection whose peer has unread data; [Server.Shutdown]
	// bounds it further by its context's deadline.
	DefaultLinger = 2 * time.Second
)

// HostName is the sender name of messages sent with [Server.Broadcast].
const HostName = "host"

// Server is a chat hub: every message a client sends reaches every other
// client, whichever listener, transport or codec each came through. The zero
// value is ready to use; set the fields before the first call to Serve and do
// not change them after.
//
// One rule for every limit and timeout below: zero means the default named
// beside it (a Default constant), and a negative value means no limit.
// MaxFrame, QueueLen and QueueBytes cannot be unlimited: Serve refuses a
// negative value there.
//
// All methods are safe for concurrent use.
type Server struct {
	// Logger receives the server's logs, under the name "server". nil means
	// no logging.
	Logger hclog.Logger
	// MaxFrame is the largest message accepted from a client, in bytes
	// (default DefaultMaxFrame). A client that sends more is disconnected.
	MaxFrame int
	// QueueLen and QueueBytes bound each client's outbound queue, in
	// messages and bytes (defaults DefaultQueueLen and DefaultQueueBytes; a
	// single message larger than QueueBytes still passes through an empty
	// queue). A full queue makes the senders wait.
	QueueLen   int
	QueueBytes int
	// StallTimeout disconnects a client that makes no progress reading its
	// messages for this long while others wait on it (default
	// DefaultStallTimeout).
	StallTimeout time.Duration
	// ReadBudget bounds the bytes that all clients' large partial frames may
	// hold at once (read buffers past their first 64 KiB), so that many
	// clients each sending a frame just under MaxFrame cannot take
	// MaxConns × MaxFrame of memory (default DefaultReadBudget). A client
	// whose frame would exceed it is disconnected with a [BudgetError].
	ReadBudget int64
	// MaxConns is the most clients connected at once, counting those still
	// in their handshake (default DefaultMaxConns). A connection past the
	// limit is closed at once and logged with a [PeerLimitError].
	MaxConns int
	// IdleTimeout disconnects a client when nothing has moved either way for
	// this long: it sent nothing and took nothing (a half-open connection
	// whose peer vanished, a peer dripping a frame). A client that only
	// listens stays while the room talks. The default is no limit.
	IdleTimeout time.Duration
	// WriteTimeout bounds how long one batch of writes to a client may take
	// even while it makes progress (a reader that drips). The default is no
	// bound beyond StallTimeout.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the handshake of connections that have one
	// ([Handshaker], such as TLS) (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Admit, when set, decides whether a connected peer may join, after its
	// handshake (so its identity is known) and after its listener's own
	// rules ([Admitter]); an error refuses it, and is logged as the reason.
	Admit func(p *Peer) error
	// NameByIdentity names peers by their transport identity ([Peer.Identity]:
	// "vm(3)", "uid=1000,pid=42", a certificate's common name) instead of
	// "#N". Names may then repeat.
	NameByIdentity bool
	// Chat prefixes every relayed message with "name: " (the sender's
	// [Peer.Name]), for people watching a terminal. Off by default: messages
	// are relayed byte-exact.
	Chat bool
	// OnJoin, OnMessage and OnLeave, when set, are called from the peer's
	// goroutine as a peer joins, sends a message (once it has been relayed;
	// msg is only valid during the call), and leaves (err is nil for a clean
	// leave). They must not block for long: the peer waits for them.
	OnJoin    func(p *Peer)
	OnMessage func(p *Peer, msg []byte)
	OnLeave   func(p *Peer, err error)
	// Room names the room of the listeners given to Serve, and of
	// Broadcast (default DefaultRoom). ServeRoom puts a listener's clients
	// in another room; messages never cross rooms.
	Room string
	// OnRefuse, when set, is called for a connection that is not let in: the
	// peer limit, a failed handshake, an admission rule. err matches
	// [ErrTooManyPeers], [ErrHandshake], a handshake [TimeoutError] or
	// [ErrRefused]. It must not block for long.
	OnRefuse func(remote net.Addr, err error)

	initOnce sync.Once
	logger   hclog.Logger
	ctx      context.Context // ended by Close: handshakes stop
	cancel   context.CancelFunc
	done     chan struct{} // closed by Close
	shutdown atomic.Bool   // set by Shutdown and Close
	nextID   atomic.Uint64
	linger   atomic.Int64 // unix nanoseconds a closing connection may linger until; 0: DefaultLinger from now

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	peers     map[*Peer]struct{}
	rooms     map[string]*room
	codecs    []Codec
	closeOnce sync.Once

	budgetUsed atomic.Int64 // bytes of the read budget held

	codecList atomic.Pointer[[]Codec]
	wg        sync.WaitGroup // peer goroutines
	reading   sync.WaitGroup // read loops running (Shutdown waits for them to stop)
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.logger = s.Logger
		if s.logger == nil {
			s.logger = hclog.NewNullLogger()
		}
		s.logger = s.logger.Named("server")
		s.done = make(chan struct{})
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.peers = make(map[*Peer]struct{})
		s.rooms = make(map[string]*room)
		s.codecList.Store(new([]Codec))
	})
}

func (s *Server) log() hclog.Logger { s.init(); return s.logger }

// limit applies the zero and negative rule to a limit: 0 is def, negative
// is 0 ("none").
func limit[T int | int64 | time.Duration](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (s *Server) stallTimeout() time.Duration { return limit(s.StallTimeout, DefaultStallTimeout) }
func (s *Server) maxConns() int               { return limit(s.MaxConns, DefaultMaxConns) }
func (s *Server) readBudget() int64           { return limit(s.ReadBudget, int64(DefaultReadBudget)) }
func (s *Server) idleTimeout() time.Duration  { return limit(s.IdleTimeout, 0) }
func (s *Server) writeTimeout() time.Duration { return limit(s.WriteTimeout, 0) }
func (s *Server) handshakeTimeout() time.Duration {
	return limit(s.HandshakeTimeout, DefaultHandshakeTimeout)
}
func (s *Server) queueLimits() (int, int) {
	return limit(s.QueueLen, DefaultQueueLen), limit(s.QueueBytes, DefaultQueueBytes)
}

// check refuses a configuration that would remove a bound that cannot be
// removed.
func (s *Server) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxFrame", s.MaxFrame}, {"QueueLen", s.QueueLen}, {"QueueBytes", s.QueueBytes}} {
		if f.v < 0 {
			return fmt.Errorf("tether: Server.%s is %d: it cannot be unlimited; use 0 for the default or a positive value", f.name, f.v)
		}
	}
	return nil
}

// Serve accepts connections on l, speaking codec c with them, and adds them to
// the server's room (Room). Serve may be called for several listeners at
// once. It always returns a non-nil error: [ErrServerClosed] after Shutdown
// or Close. The server closes l when it is shut down, and when Serve returns
// for any other reason.
func (s *Server) Serve(l net.Listener, c Codec) error {
	return s.ServeRoom(l, c, "")
}

// ServeRoom is [Server.Serve] with the listener's clients in the named room
// ("" is the server's Room). Each room is a chat of its own: every holding
// of Serve (order, backpressure, limits) holds per room.
func (s *Server) ServeRoom(l net.Listener, c Codec, roomName string) error {
	s.init()
	if l == nil {
		return errors.New("tether: Serve needs a listener")
	}
	if c == nil {
		l.Close()
		return errors.New("tether: Serve needs a codec")
	}
	if err := s.check(); err != nil {
		l.Close()
		return err
	}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	idx := s.codecIndexLocked(c)
	r := s.roomLocked(s.roomName(roomName))
	s.mu.Unlock()
	log := s.logger.With("listener", addrString(l.Addr()), "codec", c.Name(), "room", r.name)
	log.Info("listening")

	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				s.forgetListener(l)
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			log.Error("accept failed; retrying", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.done:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.startPeer(conn, l, c, idx, r)
	}
}

func (s *Server) forgetListener(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// codecIndexLocked returns c's index in s.codecs, adding it if new.
func (s *Server) codecIndexLocked(c Codec) int {
	for i, have := range s.codecs {
		if sameValue(have, c) {
			return i
		}
	}
	s.codecs = append(s.codecs, c)
	list := append([]Codec(nil), s.codecs...)
	s.codecList.Store(&list)
	return len(s.codecs) - 1
}

func (s *Server) codecAt(i int) Codec { return (*s.codecList.Load())[i] }

func (s *Server) startPeer(conn net.Conn, l net.Listener, c Codec, idx int, r *room) {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if max := s.maxConns(); max > 0 && len(s.peers) >= max {
		s.mu.Unlock()
		conn.Close()
		s.refused(conn, &PeerLimitError{Limit: max})
		return
	}
	p := newPeer(s, conn, c, idx, s.nextID.Add(1))
	p.room = r
	s.peers[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go p.run(l)
}

// refused logs a connection that was not let in and tells OnRefuse.
func (s *Server) refused(conn net.Conn, err error) {
	s.logger.Warn("connection refused", "remote", remoteString(conn), "error", err)
	if s.OnRefuse != nil {
		s.OnRefuse(conn.RemoteAddr(), err)
	}
}

// join adds a peer that passed its handshake and admission to the room. It
// returns false once the server is shutting down.
func (s *Server) join(p *Peer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	p.setState(active, nil)
	s.reading.Add(1)
	old := *p.room.members.Load()
	members := make([]*Peer, len(old), len(old)+1)
	copy(members, old)
	members = append(members, p)
	p.room.members.Store(&members)
	return true
}

// leaveRoom replaces the room snapshot without p: broadcasts read it
// without locking.
func (s *Server) leaveRoom(p *Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *p.room.members.Load()
	members := make([]*Peer, 0, len(old))
	for _, q := range old {
		if q != p {
			members = append(members, q)
		}
	}
	p.room.members.Store(&members)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}

// forget removes a finished peer, its figures kept in its room's.
func (s *Server) forget(p *Peer) {
	s.mu.Lock()
	delete(s.peers, p)
	p.ctr.fold(&p.room.done)
	s.mu.Unlock()
}

// budget is the readers' hook into the read budget.
func (s *Server) budget(delta int) error {
	used := s.budgetUsed.Add(int64(delta))
	if limit := s.readBudget(); delta > 0 && limit > 0 && used > limit {
		s.budgetUsed.Add(-int64(delta))
		return &BudgetError{Need: delta, InUse: used - int64(delta), Limit: limit}
	}
	return nil
}

// Stats is a snapshot of a server's figures.
type Stats struct {
	Peers           int   // peers in the rooms
	Connections     int   // connections held, counting those still joining or draining
	ReadBudgetInUse int64 // bytes of the read budget that large partial frames hold
}

// Stats returns the server's figures now.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	conns, peers := len(s.peers), 0
	for _, r := range s.rooms {
		peers += len(*r.members.Load())
	}
	s.mu.Unlock()
	return Stats{Peers: peers, Connections: conns, ReadBudgetInUse: s.budgetUsed.Load()}
}

// Peers returns the peers in the rooms.
func (s *Server) Peers() []*Peer {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Peer
	for _, r := range s.rooms {
		out = append(out, *r.members.Load()...)
	}
	return out
}

// Broadcast sends msg to every client of the server's room, as the host
// (see [Server.BroadcastFrom]).
func (s *Server) Broadcast(msg []byte) error {
	return s.BroadcastFrom("", HostName, msg)
}

// BroadcastFrom sends msg to every client of the named room ("" is the
// server's Room), as sender: the name Chat puts before it. It waits, like
// any sender, while a receiver's queue is full. It returns ErrServerClosed
// once the server is shutting down, and an [*UndeliverableError] when
// clients are connected but none of their codecs can carry msg; a message
// that some clients' codecs cannot carry reaches the others, and the
// refusal is logged. A room no listener serves has nobody to reach: nil.
func (s *Server) BroadcastFrom(roomName, sender string, msg []byte) error {
	s.init()
	if s.shutdown.Load() {
		return ErrServerClosed
	}
	r := s.lookupRoom(roomName)
	if r == nil {
		return nil
	}
	m := &frames{name: sender}
	res := s.broadcast(r, nil, msg, m, true)
	r.done.countShared(len(msg), res.delivered)
	if res.peers > 0 && res.delivered == 0 && len(res.refusals) > 0 {
		return &UndeliverableError{Peers: res.peers, Errs: res.refusals}
	}
	return nil
}

// broadcastResult counts what a broadcast did.
type broadcastResult struct {
	peers, delivered int
	refusals         []error // codecs that could not carry the message (host broadcasts only)
	senderGone       bool    // the sending peer died while waiting for room in a queue
}

// broadcast queues payload for every peer of room r except from, using m
// as its encodings cache (a peer's own, so that a broadcast allocates
// nothing); last says the sender has no further message at hand (see
// enqueue).
func (s *Server) broadcast(r *room, from *Peer, payload []byte, m *frames, last bool) broadcastResult {
	room := *r.members.Load()
	m.reset(from, payload, len(*s.codecList.Load()))
	defer m.releaseAll()
	var res broadcastResult
	direct := 0 // receivers this sender wrote to itself
	for _, p := range room {
		if p == from {
			continue
		}
		res.peers++
		f, err := m.get(s, p.codecIdx)
		if f == nil {
			if err != nil && from == nil {
				res.refusals = append(res.refusals, err)
			}
			continue
		}
		f.hold()
		ok, wrote := p.enqueue(f, from, last && direct < maxDirect)
		if !ok {
			res.senderGone = true
			return res
		}
		if wrote {
			direct++
		}
		res.delivered++
	}
	return res
}

// maxDirect bounds the receivers a sender writes to itself per message (see
// Peer.enqueue): each is a system call on the sender's goroutine, so in a
// large room the rest go through their writers, which coalesce.
const maxDirect = 2

// Shutdown stops the server gracefully: it closes the listeners, stops
// reading from clients, delivers every message already accepted, then
// closes the connections (each may linger up to DefaultLinger, never past
// ctx's deadline, reading what its client still sends so the close does not
// reset it). If ctx ends first, it closes everything at once (as Close) and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutdown.Store(true)
	if dl, ok := ctx.Deadline(); ok {
		s.linger.Store(dl.UnixNano())
	}
	s.closeListenersLocked()
	peers := s.peersLocked()
	s.mu.Unlock()
	s.logger.Info("shutting down", "peers", len(peers))

	for _, p := range peers {
		p.stopReading()
	}
	if err := waitCtx(ctx, s.reading.Wait); err != nil {
		s.Close()
		return err
	}
	for _, p := range peers {
		p.setState(draining, nil)
	}
	for _, p := range peers {
		select {
		case <-p.gone:
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		}
	}
	s.Close()
	return nil
}

// waitCtx runs wait and returns nil when it returns, or ctx's error if ctx
// ends first (wait then finishes in the background).
func waitCtx(ctx context.Context, wait func()) error {
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) peersLocked() []*Peer {
	peers := make([]*Peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	return peers
}

// lingerDeadline is when a closing connection stops lingering.
func (s *Server) lingerDeadline() time.Time {
	d := time.Now().Add(DefaultLinger)
	if until := s.linger.Load(); until != 0 {
		if u := time.Unix(0, until); u.Before(d) {
			return u
		}
	}
	return d
}

// Close closes the listeners and every connection at once; queued messages
// are dropped. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.init()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shutdown.Store(true)
		close(s.done)
		s.cancel()
		s.closeListenersLocked()
		peers := s.peersLocked()
		s.mu.Unlock()
		for _, p := range peers {
			p.setState(closed, ErrServerClosed)
		}
	})
	return nil
}

func (s *Server) closeListenersLocked() {
	for l := range s.listeners {
		l.Close()
		delete(s.listeners, l)
	}
}

// Wait blocks until every peer goroutine has finished (after Shutdown or
// Close, when all connections are gone).
func (s *Server) Wait() {
	s.init()
	s.wg.Wait()
}
