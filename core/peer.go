package core

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// peerState is where a peer is in its life. It only moves forward, and only
// through setState, which does everything entering a state requires.
type peerState uint32

const (
	// joining: the handshake and the admission rules run; not in the room.
	joining peerState = iota
	// active: in the room; its messages are relayed and others' queued for it.
	active
	// stopping: the server is shutting down; its messages are no longer
	// read, while what others had in flight still reaches it.
	stopping
	// draining: out of the room; what is queued for it is delivered, then
	// its connection is closed.
	draining
	// closed: the connection is closed; reason says why (nil: a clean end).
	closed
)

var stateNames = [...]string{"joining", "active", "stopping", "draining", "closed"}

func (s peerState) String() string { return stateNames[s] }

// Peer is one client connection of a [Server]. Its methods are safe for
// concurrent use.
type Peer struct {
	srv      *Server
	conn     net.Conn
	codec    Codec
	codecIdx int
	id       uint64
	name     string
	identity string
	room     *room
	chatBuf  []byte   // the read loop's buffer for "name: message"
	bcast    frames   // the read loop's broadcast cache
	ctr      counters // the read loop's figures

	state     atomic.Uint32 // a peerState: read anywhere, changed only by setState under mu
	gone      chan struct{} // closed once the peer is closed and its writer has stopped
	lastWrite atomic.Int64  // unix nanoseconds of the last batch written (kept with an idle timeout)

	mu         sync.Mutex
	reason     error    // why the peer was closed
	queue      []*frame // frames waiting for the write loop
	spare      []*frame // the write loop's other queue buffer
	queueBytes int      // bytes queued or being written
	space      chan struct{}
	writing    bool          // a write loop runs; it exits after writerLinger with nothing to do
	busy       bool          // the write loop is writing a batch
	wake       chan struct{} // tells a waiting write loop that there is work
	idle       *time.Timer   // the write loop's linger timer, reused

	w       writer // the write loop's state, kept between runs
	writeFn func() // p.writeLoop, bound once: "go p.writeLoop()" would allocate each time
}

func newPeer(s *Server, conn net.Conn, c Codec, idx int, id uint64) *Peer {
	p := &Peer{
		srv: s, conn: conn, codec: c, codecIdx: idx, id: id,
		name: "#" + strconv.FormatUint(id, 10),
		gone: make(chan struct{}),
		wake: make(chan struct{}, 1),
	}
	p.w.init(conn, s.stallTimeout(), s.writeTimeout())
	p.writeFn = p.writeLoop
	return p
}

func (p *Peer) stateNow() peerState { return peerState(p.state.Load()) }

// setState moves the peer forward to state to and does what entering it
// requires; a move to a state the peer has reached or passed is ignored.
// reason is kept when entering closed.
func (p *Peer) setState(to peerState, reason error) {
	p.mu.Lock()
	if to <= p.stateNow() {
		p.mu.Unlock()
		return
	}
	p.state.Store(uint32(to))
	switch to {
	case stopping:
		p.conn.SetReadDeadline(aLongTimeAgo)
	case draining:
		p.startWriterLocked() // it closes the connection once the queue is empty
	case closed:
		p.reason = reason
		for _, f := range p.queue {
			f.release()
		}
		clear(p.queue)
		p.queue, p.queueBytes = p.queue[:0], 0
		p.wakeSendersLocked()
		if p.writing {
			p.wakeWriterLocked() // it sees closed and stops
		} else {
			close(p.gone)
		}
	}
	p.mu.Unlock()
	if to >= draining {
		p.srv.leaveRoom(p)
	}
	if to == closed {
		p.conn.Close()
	}
}

// aLongTimeAgo is a deadline in the past: it stops a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// stopReading is Shutdown's first step: a peer in the room stops reading; a
// peer still joining is closed.
func (p *Peer) stopReading() {
	if p.stateNow() == joining {
		p.setState(closed, ErrServerClosed)
		return
	}
	p.setState(stopping, nil)
}

// logger returns the peer's logger with its fixed pairs. It is made when
// needed, not kept: ten thousand idle peers should not hold ten thousand
// loggers.
func (p *Peer) logger() hclog.Logger {
	args := []any{"peer", p.name, "remote", remoteString(p.conn), "codec", p.codec.Name()}
	if p.identity != "" {
		args = append(args, "identity", p.identity)
	}
	return p.srv.logger.With(args...)
}

// ID returns the peer's number, unique within its server.
func (p *Peer) ID() uint64 { return p.id }

// Name returns the peer's name in the room: "#" and its ID, or its identity
// when the server names peers by identity.
func (p *Peer) Name() string { return p.name }

// RemoteAddr returns the address the transport reports for the peer.
func (p *Peer) RemoteAddr() net.Addr {
	if p.conn == nil {
		return nil
	}
	return p.conn.RemoteAddr()
}

// LocalAddr returns the listener-side address of the connection.
func (p *Peer) LocalAddr() net.Addr {
	if p.conn == nil {
		return nil
	}
	return p.conn.LocalAddr()
}

// Conn returns the peer's connection, for the optional interfaces of its
// transport (a certificate, credentials). Reading or writing it would
// corrupt the stream: the server does both.
func (p *Peer) Conn() net.Conn { return p.conn }

// Identity returns who the peer is, as its transport knows it (see
// [Identity]): "vm(3)" on vsock, the process credentials on unix, the
// certificate's subject under TLS, the address otherwise. It is set once the
// handshake is done, before the admission rules run.
func (p *Peer) Identity() string { return p.identity }

// Codec returns the codec the peer speaks.
func (p *Peer) Codec() Codec { return p.codec }

// String returns the name and remote address, such as "#3 (127.0.0.1:5555)".
func (p *Peer) String() string {
	if p.conn == nil {
		return p.name
	}
	return p.name + " (" + remoteString(p.conn) + ")"
}

// run admits the peer and starts its read loop; l is its listener.
func (p *Peer) run(l net.Listener) {
	if err := p.admit(l); err != nil {
		defer p.srv.wg.Done()
		p.setState(closed, err)
		if !errors.Is(err, ErrServerClosed) {
			p.srv.refused(p.conn, err)
		}
		p.srv.forget(p)
		return
	}
	if p.srv.logger.IsInfo() { // no logger built for a message nobody will see
		p.logger().Info("joined")
	}
	if p.srv.OnJoin != nil {
		p.srv.OnJoin(p)
	}
	// The read loop gets a goroutine of its own: the handshake, the logging
	// and the hook above may have grown this one's stack, and a peer that
	// idles for hours should park on a small one.
	go p.serve()
}

// admit runs the transport's handshake, if any, names the peer, asks the
// listener's rules and the server's Admit hook, and joins the room.
func (p *Peer) admit(l net.Listener) error {
	if hs, ok := p.conn.(Handshaker); ok {
		if err := p.handshake(hs); err != nil {
			return err
		}
	}
	p.identity = Identity(p.conn)
	if p.srv.NameByIdentity {
		p.name = p.identity
	}
	if a, ok := l.(Admitter); ok {
		if err := a.Admit(p.conn); err != nil {
			return &RefusedError{Err: err}
		}
	}
	if p.srv.Admit != nil {
		if err := p.srv.Admit(p); err != nil {
			return &RefusedError{Err: err}
		}
	}
	if !p.srv.join(p) {
		return ErrServerClosed
	}
	return nil
}

// handshake runs hs under the handshake timeout; closing the server stops it.
func (p *Peer) handshake(hs Handshaker) error {
	ctx, cancel := context.WithCancel(p.srv.ctx)
	timeout := p.srv.handshakeTimeout()
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(p.srv.ctx, timeout)
	}
	defer cancel()
	err := hs.HandshakeContext(ctx)
	switch {
	case err == nil:
		return nil
	case p.srv.shutdown.Load():
		return ErrServerClosed
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &TimeoutError{Limit: ErrHandshakeTimeout, Timeout: timeout, Err: err}
	}
	return &HandshakeError{Err: err}
}

// serve runs the read loop and the peer's end.
func (p *Peer) serve() {
	defer p.srv.wg.Done()
	err := p.readLoop()
	p.srv.reading.Done()
	switch {
	case err == io.EOF:
		p.setState(draining, nil)
	case p.stateNow() >= stopping && isTimeout(err):
		// Shutdown stopped the reading; it drains the peer next.
	default:
		p.setState(closed, err)
	}
	<-p.gone
	p.srv.forget(p)

	p.mu.Lock()
	reason := p.reason
	p.mu.Unlock()
	if isClosedErr(reason) || errors.Is(reason, ErrServerClosed) {
		reason = nil
	}
	if reason == nil {
		if p.srv.logger.IsInfo() {
			p.logger().Info("left")
		}
	} else {
		p.logger().Warn("disconnected", "error", reason)
	}
	if p.srv.OnLeave != nil {
		p.srv.OnLeave(p, reason)
	}
}

func (p *Peer) readLoop() error {
	fr := p.codec.NewReader(p.conn, p.srv.MaxFrame)
	if b, ok := fr.(Budgeted); ok {
		b.SetBudget(p.srv.budget)
		defer b.Release()
	}
	buffered, _ := fr.(Buffered)
	idle := p.srv.idleTimeout()
	var readStart time.Time // only kept with an idle timeout: no clock read per message otherwise
	for {
		if idle > 0 {
			readStart = time.Now()
			p.conn.SetReadDeadline(readStart.Add(idle))
			if p.stateNow() >= stopping {
				return os.ErrDeadlineExceeded
			}
		}
		msg, err := fr.ReadFrame()
		if err != nil {
			if idle > 0 && isTimeout(err) && p.stateNow() < stopping {
				// Idle means nothing moved either way: a client that only
				// listens, and takes what it is sent, is not idle.
				if since := time.Since(time.Unix(0, p.lastWrite.Load())); since < idle && time.Since(readStart) > time.Millisecond {
					continue
				}
				return &TimeoutError{Limit: ErrIdleTimeout, Timeout: idle, Err: err}
			}
			return err
		}
		last := buffered == nil || buffered.Buffered() == 0
		res := p.srv.broadcast(p.room, p, msg, &p.bcast, last)
		p.ctr.count(len(msg), res.delivered)
		gone := res.senderGone
		if p.srv.OnMessage != nil { // after the relay: a hook's work is off the room's path
			p.srv.OnMessage(p, msg)
		}
		if gone {
			return net.ErrClosed
		}
	}
}

// enqueue adds frame f, with the reference the caller holds for this peer,
// to the peer's queue, waiting while the queue is full. ok is false only
// when the sender from was closed or the server closed while waiting; a
// receiver that is leaving is skipped (true). Either way the reference is
// taken care of. wrote reports that the frame went out directly (below).
//
// When the sender has no further message at hand (last) and this peer's
// queue is empty with no write in flight, the sender writes the frame
// itself, without waiting, and only what the socket does not take at once
// goes through the queue: an idle room's latency is one goroutine hand-off
// shorter, while a burst still goes out in batches.
func (p *Peer) enqueue(f *frame, from *Peer, last bool) (ok, wrote bool) {
	qlen, qbytes := p.srv.queueLimits()
	var fromGone <-chan struct{}
	if from != nil {
		fromGone = from.gone
	}
	for {
		p.mu.Lock()
		if p.stateNow() >= draining {
			p.mu.Unlock()
			f.release()
			return true, false
		}
		if last && p.queueBytes == 0 && !p.busy {
			n := p.w.now.write(f.buf)
			if n == len(f.buf) {
				p.mu.Unlock()
				f.release()
				if p.srv.IdleTimeout > 0 {
					p.lastWrite.Store(time.Now().UnixNano())
				}
				return true, true
			}
			if n > 0 { // the rest, in a frame of its own
				rest := newFrame()
				rest.buf = append(rest.buf, f.buf[n:]...)
				f.release()
				f = rest
			}
		}
		if p.queueBytes == 0 || (len(p.queue) < qlen && p.queueBytes+len(f.buf) <= qbytes) {
			p.queue = append(p.queue, f)
			p.queueBytes += len(f.buf)
			p.startWriterLocked()
			p.mu.Unlock()
			return true, false
		}
		if p.space == nil {
			p.space = make(chan struct{})
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-fromGone:
			f.release()
			return false, false
		case <-p.srv.done:
			f.release()
			return false, false
		}
	}
}

// wakeSendersLocked wakes every sender waiting for room in the queue.
func (p *Peer) wakeSendersLocked() {
	if p.space != nil {
		close(p.space)
		p.space = nil
	}
}

// writerLinger is how long a write loop waits for more work before it
// exits: a busy peer keeps its writer, an idle one has no goroutine for it.
const writerLinger = time.Second

// startWriterLocked starts a write loop unless one runs, or wakes it.
func (p *Peer) startWriterLocked() {
	if p.writing {
		p.wakeWriterLocked()
		return
	}
	if p.stateNow() == closed {
		return
	}
	p.writing = true
	go p.writeFn()
}

func (p *Peer) wakeWriterLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// writerExitLocked ends the write loop's run; a closed peer is then gone.
func (p *Peer) writerExitLocked() {
	p.writing = false
	if p.stateNow() == closed {
		close(p.gone)
	}
}

// writeLoop sends queued frames, many per system call, and flushes whenever
// the queue is empty: no timer on the data, no added latency. With nothing
// to do for writerLinger it returns; a draining peer's connection is closed
// once its queue is empty.
func (p *Peer) writeLoop() {
	for {
		p.mu.Lock()
		if p.stateNow() == closed {
			p.writerExitLocked()
			p.mu.Unlock()
			return
		}
		if len(p.queue) == 0 {
			if p.stateNow() == draining {
				p.mu.Unlock()
				p.closeGracefully()
				p.setState(closed, nil)
				p.mu.Lock()
				p.writerExitLocked()
				p.mu.Unlock()
				return
			}
			if !p.waitForWork() {
				return
			}
			continue
		}
		batch := p.queue
		p.queue = p.spare[:0]
		p.busy = true
		p.mu.Unlock()

		n, err := p.w.write(batch)
		if p.srv.IdleTimeout > 0 {
			p.lastWrite.Store(time.Now().UnixNano())
		}
		clear(batch)
		p.mu.Lock()
		p.busy = false
		p.spare = batch[:0]
		p.queueBytes = max(p.queueBytes-n, 0)
		queued := len(p.queue)
		p.wakeSendersLocked()
		p.mu.Unlock()
		if err != nil {
			if errors.Is(err, ErrStalled) {
				err = &StallError{Timeout: p.w.stall, Queued: queued + len(batch)}
			}
			p.setState(closed, err)
		}
	}
}

// waitForWork is called with p.mu held and an empty queue; it releases the
// lock and waits for a wake-up or for writerLinger to pass. It returns false
// when the loop ended (the lock released), true to go on (the lock
// released too).
func (p *Peer) waitForWork() bool {
	if p.idle == nil {
		p.idle = time.NewTimer(writerLinger)
	} else {
		p.idle.Reset(writerLinger)
	}
	p.mu.Unlock()
	select {
	case <-p.wake:
		return true
	case <-p.idle.C:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 && p.stateNow() < draining {
		p.writerExitLocked()
		return false
	}
	return true
}

// closeGracefully ends a drained connection: half-close so the peer reads
// everything and then EOF, read off (and drop) what the peer still sends
// until it closes or the linger deadline passes, then close.
func (p *Peer) closeGracefully() {
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		p.conn.SetReadDeadline(p.srv.lingerDeadline())
		discard(p.conn)
	}
	p.conn.Close()
}

// discard reads r until it ends, through its Read method only.
func discard(r io.Reader) {
	var buf [512]byte
	for {
		if _, err := r.Read(buf[:]); err != nil {
			return
		}
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// isClosedErr reports errors that only say the connection went away.
func isClosedErr(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed)
}
