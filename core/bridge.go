package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultDialTimeout is how long a [Bridge] keeps retrying the far side of
// a connection by default.
const DefaultDialTimeout = 5 * time.Second

// Bridge connects each connection accepted on a listener to a connection it
// dials, and relays between them both ways until both directions are done:
// a unix socket to a VM's vsock port, a hybrid vsock port to TCP, standard
// input and output to anything. A side that ends its sending (half-close)
// is passed on to the other with CloseWrite, so protocols that mark the end
// of a request that way work.
//
// By default bytes pass unchanged; between two sockets on Linux they move
// through a kernel pipe (splice) and never enter this process. With
// FromCodec and ToCodec set, messages are relayed instead: frames read with
// one codec are written with the other, and a message the target codec
// cannot carry ends that connection with an error that says so.
//
// Limits follow [Server]'s rule: zero means the default, negative no limit.
// The zero value needs only Dial. All methods are safe for concurrent use.
type Bridge struct {
	// Dial opens the far side for one accepted connection. Required.
	Dial func(ctx context.Context) (net.Conn, error)
	// DialTimeout bounds how long each connection keeps retrying Dial,
	// with backoff and jitter, while the far side is not there yet (a VM
	// still booting) (default DefaultDialTimeout).
	DialTimeout time.Duration
	// FromCodec and ToCodec, both set, relay messages: frames of FromCodec
	// on the accepted side, of ToCodec on the dialed side. Both nil relay
	// bytes.
	FromCodec, ToCodec Codec
	// MaxFrame bounds messages in message mode (default DefaultMaxFrame).
	MaxFrame int
	// MaxConns is the most connections bridged at once (default
	// DefaultMaxConns); more are refused and logged.
	MaxConns int
	// IdleTimeout closes a connection when nothing has moved either way for
	// this long (default: no limit).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the accepted side's handshake ([Handshaker])
	// (default DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Admit, when set, decides whether an accepted connection is bridged,
	// after its handshake and its listener's own rules ([Admitter]).
	Admit func(conn net.Conn) error
	// Logger receives one line when a connection opens (with its peer's
	// identity) and one when it ends (bytes each way, how long, why), under
	// the name "bridge". nil means no logging.
	Logger hclog.Logger
	// OnEnd, when set, is called with each connection's figures as it ends.
	OnEnd func(BridgeStats)
	// OnRefuse, when set, is called for a connection closed at once because
	// MaxConns were open (err is a [*PeerLimitError]); refusals by the
	// admission rules end through OnEnd with a [*RefusedError].
	OnRefuse func(remote net.Addr, err error)

	initOnce sync.Once
	log      hclog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	nextID   atomic.Uint64
	active   atomic.Int64
	in, out  atomic.Int64 // bytes carried so far, all connections
	mu       sync.Mutex
	ls       map[net.Listener]struct{}
	conns    map[*bridged]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// BridgeStats are one bridged connection's figures.
type BridgeStats struct {
	ID       uint64
	Identity string        // the accepted side's peer, as its transport knows it
	In, Out  int64         // bytes (message mode: message bytes) from the accepted side to the dialed one, and back
	Duration time.Duration // from accept to the end
	Err      error         // why it ended; nil when both sides ended their streams
}

// DialError reports a far side that could not be reached within the dial
// timeout.
type DialError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error // the last attempt's error; if the timeout cut that attempt short, the one before it, which says why
}

// Error names the figures and the last failure.
func (e *DialError) Error() string {
	return fmt.Sprintf("could not reach the far side: %d attempts in %v: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

// Unwrap returns Err.
func (e *DialError) Unwrap() error { return e.Err }

func (b *Bridge) init() {
	b.initOnce.Do(func() {
		b.log = b.Logger
		if b.log == nil {
			b.log = hclog.NewNullLogger()
		}
		b.log = b.log.Named("bridge")
		b.ctx, b.cancel = context.WithCancel(context.Background())
		b.ls = map[net.Listener]struct{}{}
		b.conns = map[*bridged]struct{}{}
	})
}

func (b *Bridge) check() error {
	switch {
	case b.Dial == nil:
		return errors.New("tether: a Bridge needs Dial")
	case (b.FromCodec == nil) != (b.ToCodec == nil):
		return errors.New("tether: a Bridge relays messages with both FromCodec and ToCodec, or bytes with neither")
	case b.MaxFrame < 0:
		return errors.New("tether: Bridge.MaxFrame cannot be unlimited; use 0 for the default")
	}
	return nil
}

// Serve bridges every connection accepted on l until l fails or the bridge
// is shut down (ErrServerClosed). It returns the listener's error, such as
// net.ErrClosed when l ends by itself (a stdio listener after its one
// connection); connections already bridged go on.
func (b *Bridge) Serve(l net.Listener) error {
	b.init()
	if l == nil {
		return errors.New("tether: Serve needs a listener")
	}
	if err := b.check(); err != nil {
		l.Close()
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	b.ls[l] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.ls, l)
		b.mu.Unlock()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if b.ctx.Err() != nil {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.log.Error("accept failed; retrying", "error", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		if limit := limit(b.MaxConns, DefaultMaxConns); limit > 0 && b.active.Load() >= int64(limit) {
			c.Close()
			err := &PeerLimitError{Limit: limit}
			b.log.Warn("connection refused", "remote", remoteString(c), "error", err)
			if b.OnRefuse != nil {
				b.OnRefuse(c.RemoteAddr(), err)
			}
			continue
		}
		b.active.Add(1)
		b.wg.Add(1)
		go b.bridge(c, l)
	}
}

// bridged is one connection pair.
type bridged struct {
	from, to net.Conn
	mu       sync.Mutex
}

func (p *bridged) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.from.Close()
	if p.to != nil {
		p.to.Close()
	}
}

func (b *Bridge) bridge(from net.Conn, l net.Listener) {
	defer b.wg.Done()
	defer b.active.Add(-1)
	start := time.Now()
	st := BridgeStats{ID: b.nextID.Add(1)}
	p := &bridged{from: from}
	b.mu.Lock()
	b.conns[p] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, p)
		b.mu.Unlock()
		p.closeAll()
		st.Duration = time.Since(start)
		if st.Err != nil {
			b.log.Warn("closed", "id", st.ID, "identity", st.Identity, "bytes_in", st.In, "bytes_out", st.Out, "duration", st.Duration.Round(time.Millisecond), "error", st.Err)
		} else {
			b.log.Info("closed", "id", st.ID, "identity", st.Identity, "bytes_in", st.In, "bytes_out", st.Out, "duration", st.Duration.Round(time.Millisecond))
		}
		if b.OnEnd != nil {
			b.OnEnd(st)
		}
	}()
	if hs, ok := from.(Handshaker); ok {
		ctx, cancel := context.WithTimeout(b.ctx, limit(b.HandshakeTimeout, DefaultHandshakeTimeout))
		err := hs.HandshakeContext(ctx)
		cancel()
		if err != nil {
			st.Err = &HandshakeError{Err: err}
			return
		}
	}
	st.Identity = Identity(from)
	if a, ok := l.(Admitter); ok {
		if err := a.Admit(from); err != nil {
			st.Err = &RefusedError{Err: err}
			return
		}
	}
	if b.Admit != nil {
		if err := b.Admit(from); err != nil {
			st.Err = &RefusedError{Err: err}
			return
		}
	}
	b.log.Info("opened", "id", st.ID, "remote", remoteString(from), "identity", st.Identity)
	to, err := b.dial()
	if err != nil {
		st.Err = err
		return
	}
	p.mu.Lock()
	p.to = to
	p.mu.Unlock()
	if b.FromCodec != nil {
		st.In, st.Out, st.Err = b.relayMessages(from, to)
	} else {
		st.In, st.Out, st.Err = b.relayBytes(from, to)
	}
}

// dial reaches the far side, retrying with backoff and jitter while it is
// not there, for at most the dial timeout.
func (b *Bridge) dial() (net.Conn, error) {
	timeout := limit(b.DialTimeout, DefaultDialTimeout)
	start := time.Now()
	ctx := b.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(b.ctx, timeout)
		defer cancel()
	}
	delay := 10 * time.Millisecond
	var reason error // the last failure that says why, not just "out of time"
	for attempt := 1; ; attempt++ {
		c, err := b.Dial(ctx)
		if err == nil {
			return c, nil
		}
		if ctx.Err() == nil || reason == nil {
			reason = err
		}
		if ctx.Err() != nil || !retryable(err) {
			return nil, &DialError{Attempts: attempt, Elapsed: time.Since(start), Err: reason}
		}
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay)))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, &DialError{Attempts: attempt, Elapsed: time.Since(start), Err: reason}
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// retryable reports the dial failures of a far side that is not there yet.
func retryable(err error) bool {
	for _, e := range []error{ErrNotListening, syscall.ECONNREFUSED, syscall.ENOENT, syscall.ECONNRESET, syscall.EHOSTUNREACH,
		syscall.ENETUNREACH, syscall.ENODEV, syscall.ETIMEDOUT, syscall.EAGAIN, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// counter counts one direction's bytes as they move, for the connection
// and for the whole bridge.
type counter struct{ conn, bridge *atomic.Int64 }

func (c counter) add(k int) {
	c.conn.Add(int64(k))
	c.bridge.Add(int64(k))
}

// activity is what the idle timeout watches: the last time a byte moved
// either way.
type activity struct{ last atomic.Int64 }

func (a *activity) touch() { a.last.Store(time.Now().UnixNano()) }

func (a *activity) since() time.Duration { return time.Since(time.Unix(0, a.last.Load())) }

// relayBytes copies both ways, passing a half-close on, until both
// directions are done or one fails.
func (b *Bridge) relayBytes(from, to net.Conn) (in, out int64, err error) {
	var act activity
	act.touch()
	var nIn, nOut atomic.Int64
	errs := make(chan error, 2)
	go func() { errs <- b.pump(to, from, counter{&nIn, &b.in}, &act) }()
	go func() { errs <- b.pump(from, to, counter{&nOut, &b.out}, &act) }()
	for range 2 {
		if e := <-errs; e != nil && err == nil {
			err = e
			from.Close() // one way failed: end the other at once
			to.Close()
		}
	}
	return nIn.Load(), nOut.Load(), err
}

// pump copies src to dst until src ends, then half-closes dst.
func (b *Bridge) pump(dst, src net.Conn, n counter, act *activity) error {
	moved := func(k int) { n.add(k); act.touch() }
	err := b.idle(src, act, func() error { return copyConn(dst, src, moved) })
	if err != nil {
		return err
	}
	return closeWrite(dst)
}

// idle runs a copy under the idle timeout: a read deadline that, when it
// passes while the other direction moved, is extended rather than obeyed.
func (b *Bridge) idle(src net.Conn, act *activity, copy func() error) error {
	idle := limit(b.IdleTimeout, 0)
	if idle <= 0 {
		return copy()
	}
	for {
		src.SetReadDeadline(time.Now().Add(idle))
		err := copy()
		if err == nil || !isTimeout(err) {
			return err
		}
		if since := act.since(); since < idle {
			continue // the other way moved: not idle
		}
		return &TimeoutError{Limit: ErrIdleTimeout, Timeout: idle, Err: err}
	}
}

// closeWrite passes the end of a stream on: a half-close where the
// connection has one, a full close where it does not.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
	return c.Close()
}

// copyBufs holds the buffers of copies that cannot splice.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// copyConn copies src to dst until src ends, calling moved for each chunk:
// through a kernel pipe when both are sockets the engine may use directly
// (SocketOf) and the kernel can splice them, else through their Read and
// Write methods with a pooled buffer.
func copyConn(dst, src net.Conn, moved func(int)) error {
	if err := spliceConns(dst, src, moved); !errors.Is(err, errSpliceUnsupported) {
		return err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return werr
			}
			moved(k)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// spliceConns splices src to dst when both are sockets, or says
// errSpliceUnsupported before anything moved.
func spliceConns(dst, src net.Conn, moved func(int)) error {
	ds, ok1 := SocketOf(dst)
	ss, ok2 := SocketOf(src)
	if !ok1 || !ok2 {
		return errSpliceUnsupported
	}
	dc, ok1 := ds.(syscall.Conn)
	sc, ok2 := ss.(syscall.Conn)
	if !ok1 || !ok2 {
		return errSpliceUnsupported
	}
	draw, err1 := dc.SyscallConn()
	sraw, err2 := sc.SyscallConn()
	if err1 != nil || err2 != nil {
		return errSpliceUnsupported
	}
	s, err := newSplicer()
	if err != nil {
		return errSpliceUnsupported
	}
	defer s.close()
	return s.copy(draw, sraw, moved)
}

// relayMessages reads frames of one codec and writes them with the other,
// both ways.
func (b *Bridge) relayMessages(from, to net.Conn) (in, out int64, err error) {
	fc := NewClient(from, b.FromCodec, b.MaxFrame)
	tc := NewClient(to, b.ToCodec, b.MaxFrame)
	var act activity
	act.touch()
	var nIn, nOut atomic.Int64
	errs := make(chan error, 2)
	go func() { errs <- b.pumpMessages(tc, fc, counter{&nIn, &b.in}, &act, "accepted", "dialed") }()
	go func() { errs <- b.pumpMessages(fc, tc, counter{&nOut, &b.out}, &act, "dialed", "accepted") }()
	for range 2 {
		if e := <-errs; e != nil && err == nil {
			err = e
			from.Close()
			to.Close()
		}
	}
	return nIn.Load(), nOut.Load(), err
}

// pumpMessages relays src's messages to dst until src ends, then
// half-closes dst.
func (b *Bridge) pumpMessages(dst, src *Client, n counter, act *activity, srcSide, dstSide string) error {
	err := b.idle(src.Conn(), act, func() error {
		for {
			m, err := src.Receive()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := dst.Queue(m); err != nil {
				return fmt.Errorf("a message of %d bytes from the %s side cannot go to the %s side: %w", len(m), srcSide, dstSide, err)
			}
			n.add(len(m))
			act.touch()
			if src.Buffered() == 0 {
				if err := dst.Flush(); err != nil {
					return err
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return dst.CloseWrite()
}

// Active returns the number of connections being bridged.
func (b *Bridge) Active() int {
	return int(b.active.Load())
}

// Bytes returns the bytes (message mode: message bytes) carried so far by
// every connection, open or ended: in, from accepted sides to dialed ones,
// and out, back. They count as they move, not when a connection ends.
func (b *Bridge) Bytes() (in, out int64) {
	if b == nil {
		return 0, 0
	}
	return b.in.Load(), b.out.Load()
}

// Shutdown stops accepting and waits for the bridged connections to end by
// themselves; if ctx ends first it closes them (as Close) and returns
// ctx's error.
func (b *Bridge) Shutdown(ctx context.Context) error {
	b.init()
	b.mu.Lock()
	b.closed = true
	for l := range b.ls {
		l.Close()
	}
	b.mu.Unlock()
	if err := waitCtx(ctx, b.wg.Wait); err != nil {
		b.Close()
		return err
	}
	b.cancel()
	return nil
}

// Close stops accepting and closes every bridged connection at once. It is
// idempotent.
func (b *Bridge) Close() error {
	b.init()
	b.mu.Lock()
	b.closed = true
	b.cancel()
	for l := range b.ls {
		l.Close()
	}
	pairs := make([]*bridged, 0, len(b.conns))
	for p := range b.conns {
		pairs = append(pairs, p)
	}
	b.mu.Unlock()
	for _, p := range pairs {
		p.closeAll()
	}
	return nil
}

// Wait blocks until every bridged connection has ended.
func (b *Bridge) Wait() {
	b.init()
	b.wg.Wait()
}
