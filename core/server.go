package core

import (
	"context"
	"errors"
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
)

// HostName is the sender name of messages sent with [Server.Broadcast].
const HostName = "host"

// Server is a chat hub: every message a client sends reaches every other
// client, whichever listener, transport or codec each came through. The zero
// value is ready to use; set the fields before the first call to Serve and do
// not change them after.
//
// All methods are safe for concurrent use.
type Server struct {
	// Logger receives the server's logs, under the name "server". nil means
	// no logging.
	Logger hclog.Logger
	// MaxFrame is the largest message accepted from a client, in bytes; 0
	// means DefaultMaxFrame. A client that sends more is disconnected.
	MaxFrame int
	// QueueLen and QueueBytes bound each client's outbound queue, in
	// messages and bytes (a single message larger than QueueBytes still
	// passes through an empty queue); 0 means DefaultQueueLen and
	// DefaultQueueBytes. A full queue makes the senders wait.
	QueueLen   int
	QueueBytes int
	// StallTimeout disconnects a client that makes no progress reading its
	// messages for this long while others wait on it; 0 means
	// DefaultStallTimeout, a negative value never.
	StallTimeout time.Duration
	// ReadBudget bounds the bytes that all clients' large partial frames may
	// hold at once (read buffers past their first 64 KiB), so that many
	// clients each sending a frame just under MaxFrame cannot take
	// MaxConns × MaxFrame of memory. A client whose frame would exceed it
	// is disconnected with a BudgetError. 0 means DefaultReadBudget (256
	// MiB), a negative value no budget.
	ReadBudget int64
	// MaxConns is the most clients connected at once (counting those still
	// in their handshake); 0 means DefaultMaxConns, a negative value no
	// limit. A connection past the limit is closed at once and logged.
	MaxConns int
	// IdleTimeout disconnects a client when nothing has moved either way for
	// this long: it sent nothing and took nothing (a half-open connection
	// whose peer vanished, a peer dripping a frame). A client that only
	// listens stays while the room talks. 0 means never.
	IdleTimeout time.Duration
	// WriteTimeout bounds how long one batch of writes to a client may take
	// even while it makes progress (a reader that drips); 0 means no bound
	// beyond StallTimeout.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the handshake of transports that have one
	// (connections with a HandshakeContext method, such as TLS); 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Admit, when set, decides whether a connected peer may join (after its
	// handshake, so its identity is known); an error refuses it, and is
	// logged as the reason.
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
	// goroutine as a peer joins, sends a message (msg is only valid during the
	// call), and leaves (err is nil for a clean leave). They must not block
	// for long: the peer waits for them.
	OnJoin    func(p *Peer)
	OnMessage func(p *Peer, msg []byte)
	OnLeave   func(p *Peer, err error)

	initOnce sync.Once
	logger   hclog.Logger
	done     chan struct{} // closed by Close
	shutdown atomic.Bool   // set by Shutdown and Close
	nextID   atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	peers     map[*Peer]struct{}
	codecs    []Codec
	closeOnce sync.Once

	budgetUsed atomic.Int64 // bytes of the read budget held

	room      atomic.Pointer[[]*Peer] // the peers that receive broadcasts
	codecList atomic.Pointer[[]Codec]
	wg        sync.WaitGroup // peer goroutines
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.logger = s.Logger
		if s.logger == nil {
			s.logger = hclog.NewNullLogger()
		}
		s.logger = s.logger.Named("server")
		s.done = make(chan struct{})
		s.listeners = make(map[net.Listener]struct{})
		s.peers = make(map[*Peer]struct{})
		s.room.Store(new([]*Peer))
		s.codecList.Store(new([]Codec))
	})
}

func (s *Server) log() hclog.Logger { s.init(); return s.logger }

func (s *Server) stallTimeout() time.Duration {
	switch {
	case s.StallTimeout == 0:
		return DefaultStallTimeout
	case s.StallTimeout < 0:
		return 0
	}
	return s.StallTimeout
}

// Serve accepts connections on l, speaking codec c with them, and adds them to
// the room. Serve may be called for several listeners at once. It always
// returns a non-nil error: [ErrServerClosed] after Shutdown or Close. The
// server closes l when it is shut down.
func (s *Server) Serve(l net.Listener, c Codec) error {
	s.init()
	if c == nil {
		return errors.New("tether: Serve needs a codec")
	}
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	idx := s.codecIndexLocked(c)
	s.mu.Unlock()
	log := s.logger.With("listener", l.Addr().String(), "codec", c.Name())
	log.Info("listening")

	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
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
		s.startPeer(conn, c, idx)
	}
}

// codecIndexLocked returns c's index in s.codecs, adding it if new.
func (s *Server) codecIndexLocked(c Codec) int {
	for i, have := range s.codecs {
		if have == c {
			return i
		}
	}
	s.codecs = append(s.codecs, c)
	list := append([]Codec(nil), s.codecs...)
	s.codecList.Store(&list)
	return len(s.codecs) - 1
}

func (s *Server) codecAt(i int) Codec { return (*s.codecList.Load())[i] }

func (s *Server) startPeer(conn net.Conn, c Codec, idx int) {
	p := newPeer(s, conn, c, idx, s.nextID.Add(1))
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		conn.Close()
		return
	}
	if limit := s.maxConns(); limit > 0 && len(s.peers) >= limit {
		s.mu.Unlock()
		conn.Close()
		s.logger.Warn("connection refused: too many clients", "remote", remoteString(conn), "clients", limit, "limit", limit)
		return
	}
	s.peers[p] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go p.run()
}

func (s *Server) maxConns() int {
	if s.MaxConns == 0 {
		return DefaultMaxConns
	}
	return s.MaxConns
}

// join adds a peer that passed its handshake and admission to the room.
func (s *Server) join(p *Peer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown.Load() {
		return false
	}
	s.joinRoomLocked(p)
	return true
}

// joinRoomLocked and leaveRoomLocked replace the room snapshot: broadcasts
// read it without locking.
func (s *Server) joinRoomLocked(p *Peer) {
	old := *s.room.Load()
	room := make([]*Peer, len(old), len(old)+1)
	copy(room, old)
	room = append(room, p)
	s.room.Store(&room)
}

func (s *Server) leaveRoom(p *Peer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.room.Load()
	room := make([]*Peer, 0, len(old))
	for _, q := range old {
		if q != p {
			room = append(room, q)
		}
	}
	s.room.Store(&room)
}

// budget is the readers' hook into the read budget.
func (s *Server) budget(delta int) error {
	used := s.budgetUsed.Add(int64(delta))
	limit := s.ReadBudget
	if limit == 0 {
		limit = DefaultReadBudget
	}
	if delta > 0 && limit > 0 && used > limit {
		s.budgetUsed.Add(-int64(delta))
		return &BudgetError{Need: delta, InUse: used - int64(delta), Limit: limit}
	}
	return nil
}

// Peers returns the connected peers.
func (s *Server) Peers() []*Peer {
	s.init()
	return append([]*Peer(nil), *s.room.Load()...)
}

// Broadcast sends msg to every client, as the host. It waits, like any
// sender, while a receiver's queue is full. It returns ErrServerClosed once
// the server is shutting down.
func (s *Server) Broadcast(msg []byte) error {
	s.init()
	if s.shutdown.Load() {
		return ErrServerClosed
	}
	s.broadcast(nil, msg)
	return nil
}

// broadcast queues payload for every peer of the room except from. It
// returns false if from died while waiting for room in a queue.
func (s *Server) broadcast(from *Peer, payload []byte) bool {
	room := *s.room.Load()
	n := len(*s.codecList.Load())
	// The encodings cache lives in the sender (only its read loop
	// broadcasts for it), so a broadcast allocates nothing.
	m := &frames{}
	if from != nil {
		m = &from.bcast
	}
	m.from, m.payload = from, payload
	if cap(m.enc) < n {
		m.enc, m.done = make([]*frame, n), make([]bool, n)
	}
	m.enc, m.done = m.enc[:n], m.done[:n]
	clear(m.enc)
	clear(m.done)
	defer m.releaseAll()
	for _, p := range room {
		if p == from {
			continue
		}
		f := m.get(s, p.codecIdx)
		if f == nil {
			continue
		}
		f.hold()
		if !p.enqueue(f, from) {
			return false
		}
	}
	return true
}

// Shutdown stops the server gracefully: it closes the listeners, stops
// reading from clients, delivers every message already accepted, then closes
// the connections. If ctx ends first, it closes everything at once (as Close)
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutdown.Store(true)
	s.closeListenersLocked()
	peers := make([]*Peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	s.logger.Info("shutting down", "peers", len(peers))

	for _, p := range peers {
		p.stopReading()
	}
	if err := waitEach(ctx, peers, func(p *Peer) <-chan struct{} { return p.readerDone }); err != nil {
		s.Close()
		return err
	}
	for _, p := range peers {
		p.drain()
	}
	if err := waitEach(ctx, peers, func(p *Peer) <-chan struct{} { return p.finished }); err != nil {
		s.Close()
		return err
	}
	s.Close()
	return nil
}

// waitEach waits for the channel done(p) of every peer, or for ctx to end.
func waitEach(ctx context.Context, peers []*Peer, done func(*Peer) <-chan struct{}) error {
	for _, p := range peers {
		select {
		case <-done(p):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close closes the listeners and every connection at once; queued messages
// are dropped. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.init()
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.shutdown.Store(true)
		close(s.done)
		s.closeListenersLocked()
		peers := make([]*Peer, 0, len(s.peers))
		for p := range s.peers {
			peers = append(peers, p)
		}
		s.mu.Unlock()
		for _, p := range peers {
			p.kill(ErrServerClosed)
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
