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

// lingerTime bounds how long a closing connection is read (and the bytes
// dropped) after the server's last write, so that the close does not reset
// a connection whose peer is still sending.
const lingerTime = 2 * time.Second

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
	chatBuf  []byte // the read loop's buffer for "name: message"
	bcast    frames // the read loop's broadcast cache

	readerDone chan struct{} // closed when the read loop has stopped
	writerDone chan struct{} // closed when the write loop has stopped
	finished   chan struct{} // closed after OnLeave: the peer is gone
	dead       chan struct{} // closed by kill
	killOnce   sync.Once
	stopping   atomic.Bool  // reading stopped by Shutdown
	lastWrite  atomic.Int64 // unix nanoseconds of the last batch written

	mu         sync.Mutex
	reason     error    // why the peer was killed
	queue      []*frame // frames waiting for the write loop
	spare      []*frame // the write loop's other queue buffer
	queueBytes int      // bytes queued or being written
	leaving    bool     // out of the room: new frames are dropped
	draining   bool     // the write loop exits once the queue is empty
	space      chan struct{}
	writing    bool          // a write loop runs; it exits after writerLinger with nothing to do
	wake       chan struct{} // tells a waiting write loop that the queue has frames
	idle       *time.Timer   // the write loop's linger timer, reused

	w          writer    // the write loop's state, kept between runs
	writeFn    func()    // p.writeLoop, bound once: "go p.writeLoop()" would allocate each time
	writerOnce sync.Once // closes writerDone
}

func newPeer(s *Server, conn net.Conn, c Codec, idx int, id uint64) *Peer {
	p := &Peer{
		srv: s, conn: conn, codec: c, codecIdx: idx, id: id,
		name:       "#" + strconv.FormatUint(id, 10),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		finished:   make(chan struct{}),
		dead:       make(chan struct{}),
		wake:       make(chan struct{}, 1),
	}
	p.w = writer{conn: conn, stall: s.stallTimeout(), total: s.WriteTimeout}
	p.writeFn = p.writeLoop
	return p
}

func remoteString(c net.Conn) string {
	if a := c.RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return c.LocalAddr().Network()
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

// Name returns the peer's name in the room, "#" and its ID.
func (p *Peer) Name() string { return p.name }

// RemoteAddr returns the address the transport reports for the peer.
func (p *Peer) RemoteAddr() net.Addr { return p.conn.RemoteAddr() }

// LocalAddr returns the listener-side address of the connection.
func (p *Peer) LocalAddr() net.Addr { return p.conn.LocalAddr() }

// Identity returns who the peer is, as its transport knows it: "vm(3)" on
// vsock, the process credentials on unix, the certificate's subject under
// TLS, the address otherwise. It is set once the peer has been admitted.
func (p *Peer) Identity() string { return p.identity }

// Codec returns the codec the peer speaks.
func (p *Peer) Codec() Codec { return p.codec }

// String returns the name and remote address, such as "#3 (127.0.0.1:5555)".
func (p *Peer) String() string { return p.name + " (" + remoteString(p.conn) + ")" }

func (p *Peer) run() {
	if err := p.admit(); err != nil {
		defer p.srv.wg.Done()
		if !errors.Is(err, ErrServerClosed) {
			p.logger().Warn("refused", "error", err)
		}
		p.conn.Close()
		p.srv.mu.Lock()
		delete(p.srv.peers, p)
		p.srv.mu.Unlock()
		close(p.readerDone)
		p.finishWriter()
		close(p.finished)
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

// serve runs the read loop and the peer's end.
func (p *Peer) serve() {
	defer p.srv.wg.Done()
	err := p.readLoop()
	close(p.readerDone)
	switch {
	case err == io.EOF:
		p.leave()
	case p.stopping.Load() && isTimeout(err):
		// Shutdown stopped the reading; it drains the queue next.
	default:
		p.kill(err)
	}
	<-p.writerDone
	p.srv.leaveRoom(p)
	p.srv.mu.Lock()
	delete(p.srv.peers, p)
	p.srv.mu.Unlock()

	reason := p.killReason()
	switch {
	case reason == nil || errors.Is(reason, ErrServerClosed):
		if p.srv.logger.IsInfo() {
			p.logger().Info("left")
		}
	default:
		p.logger().Warn("disconnected", "error", reason)
	}
	if p.srv.OnLeave != nil {
		p.srv.OnLeave(p, reason)
	}
	close(p.finished)
}

// admit runs the transport's handshake, if any, names the peer, asks the
// server's Admit hook, and joins the room.
func (p *Peer) admit() error {
	if hs, ok := p.conn.(interface {
		HandshakeContext(context.Context) error
	}); ok {
		timeout := p.srv.HandshakeTimeout
		if timeout <= 0 {
			timeout = DefaultHandshakeTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := hs.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return &LimitError{What: "handshake", Limit: timeout.String(), Err: err}
		}
	}
	p.identity = identity(p.conn)
	if p.srv.NameByIdentity {
		p.name = p.identity
	}
	if p.srv.Admit != nil {
		if err := p.srv.Admit(p); err != nil {
			return err
		}
	}
	if !p.srv.join(p) {
		return ErrServerClosed
	}
	return nil
}

func (p *Peer) readLoop() error {
	fr := p.codec.NewReader(p.conn, p.srv.MaxFrame)
	if b, ok := fr.(Budgeted); ok {
		b.SetBudget(p.srv.budget)
		defer b.Release()
	}
	idle := p.srv.IdleTimeout
	var readStart time.Time // only kept with an idle timeout: no clock read per message otherwise
	for {
		if idle > 0 {
			readStart = time.Now()
			p.conn.SetReadDeadline(readStart.Add(idle))
			if p.stopping.Load() {
				return os.ErrDeadlineExceeded
			}
		}
		msg, err := fr.ReadFrame()
		if err != nil {
			if idle > 0 && isTimeout(err) && !p.stopping.Load() {
				// Idle means nothing moved either way: a client that only
				// listens, and takes what it is sent, is not idle.
				if since := time.Since(time.Unix(0, p.lastWrite.Load())); since < idle && time.Since(readStart) > time.Millisecond {
					continue
				}
				return &LimitError{What: "idle timeout", Limit: idle.String(), Err: err}
			}
			return err
		}
		if p.srv.OnMessage != nil {
			p.srv.OnMessage(p, msg)
		}
		if !p.srv.broadcast(p, msg) {
			return p.killReason()
		}
	}
}

// enqueue adds frame f, with the reference the caller holds for this peer,
// to the peer's queue, waiting while the queue is full. It returns false
// only when the sender from died or the server closed while waiting; a
// receiver that left is skipped (true). Either way the reference is taken
// care of.
func (p *Peer) enqueue(f *frame, from *Peer) bool {
	qlen, qbytes := p.srv.QueueLen, p.srv.QueueBytes
	if qlen <= 0 {
		qlen = DefaultQueueLen
	}
	if qbytes <= 0 {
		qbytes = DefaultQueueBytes
	}
	var fromDead <-chan struct{}
	if from != nil {
		fromDead = from.dead
	}
	for {
		p.mu.Lock()
		if p.leaving {
			p.mu.Unlock()
			f.release()
			return true
		}
		if p.queueBytes == 0 || (len(p.queue) < qlen && p.queueBytes+len(f.buf) <= qbytes) {
			p.queue = append(p.queue, f)
			p.queueBytes += len(f.buf)
			p.startWriterLocked()
			p.mu.Unlock()
			return true
		}
		if p.space == nil {
			p.space = make(chan struct{})
		}
		space := p.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-p.dead:
			f.release()
			return true
		case <-fromDead:
			f.release()
			return false
		case <-p.srv.done:
			f.release()
			return false
		}
	}
}

// writerLinger is how long a write loop waits for more work before it
// exits: a busy peer keeps its writer, an idle one has no goroutine for it.
const writerLinger = time.Second

// startWriterLocked starts a write loop unless one runs, or wakes it.
func (p *Peer) startWriterLocked() {
	if !p.writing {
		p.writing = true
		go p.writeFn()
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// finishWriter marks the writing side done for good.
func (p *Peer) finishWriter() { p.writerOnce.Do(func() { close(p.writerDone) }) }

// writeLoop sends queued frames, many per system call, and flushes whenever
// the queue is empty: no timer on the data, no added latency. With nothing
// to do for writerLinger it returns; a draining peer's connection is closed
// once its queue is empty.
func (p *Peer) writeLoop() {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			if p.draining {
				p.mu.Unlock()
				p.closeGracefully()
				p.finishWriter()
				return
			}
			if p.idle == nil {
				p.idle = time.NewTimer(writerLinger)
			} else {
				p.idle.Reset(writerLinger)
			}
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-p.dead:
			case <-p.idle.C:
			}
			p.mu.Lock()
			if len(p.queue) == 0 && !p.draining {
				p.writing = false
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			continue
		}
		batch := p.queue
		p.queue = p.spare[:0]
		p.mu.Unlock()

		n, err := p.w.write(batch)
		if p.srv.IdleTimeout > 0 {
			p.lastWrite.Store(time.Now().UnixNano())
		}
		clear(batch)
		p.mu.Lock()
		p.spare = batch[:0]
		p.queueBytes -= n
		queued := len(p.queue)
		if p.space != nil {
			close(p.space)
			p.space = nil
		}
		p.mu.Unlock()
		if err != nil {
			if errors.Is(err, ErrStalled) {
				err = &StallError{Timeout: p.w.stall.String(), Queued: queued + len(batch)}
			}
			p.kill(err)
			p.finishWriter()
			return
		}
	}
}

// closeGracefully ends a drained connection: half-close so the peer reads
// everything and then EOF, read off (and drop) what the peer still sends for
// a moment, then close.
func (p *Peer) closeGracefully() {
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil && p.stopping.Load() {
			p.conn.SetReadDeadline(time.Now().Add(lingerTime))
			io.Copy(io.Discard, p.conn)
		}
	}
	p.conn.Close()
}

// leave takes a peer whose client ended its stream out of the room; its
// queue is still delivered before the connection closes.
func (p *Peer) leave() {
	p.srv.leaveRoom(p)
	p.mu.Lock()
	p.leaving = true
	p.draining = true
	p.startWriterLocked()
	p.mu.Unlock()
}

// stopReading makes the read loop stop at once (Shutdown).
func (p *Peer) stopReading() {
	p.stopping.Store(true)
	p.conn.SetReadDeadline(time.Unix(1, 0))
}

// drain makes the write loop finish the queue and close (Shutdown).
func (p *Peer) drain() {
	p.mu.Lock()
	p.draining = true
	p.startWriterLocked()
	p.mu.Unlock()
}

// kill closes the connection at once; err is the reason logged and reported.
func (p *Peer) kill(err error) {
	p.killOnce.Do(func() {
		p.mu.Lock()
		p.reason = err
		p.leaving = true
		p.draining = true
		p.mu.Unlock()
		close(p.dead)
		p.conn.Close()
		p.mu.Lock()
		if !p.writing {
			p.finishWriter() // no write loop runs to do it
		}
		p.mu.Unlock()
	})
}

func (p *Peer) killReason() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if isClosedErr(p.reason) {
		return nil
	}
	return p.reason
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// isClosedErr reports errors that only say the connection went away.
func isClosedErr(err error) bool {
	return err == nil || errors.Is(err, net.ErrClosed)
}
