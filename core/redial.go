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
	"time"
)

// Defaults for the zero values of [Redialer]'s fields.
const (
	DefaultOutbox      = 10000
	DefaultOutboxBytes = 64 << 20
	DefaultMinBackoff  = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// ErrRedialerUsed is returned by a second call to [Redialer.Run]: a
// Redialer runs once.
var ErrRedialerUsed = errors.New("tether: Redialer.Run was already called; make a new Redialer to run again")

// ErrSendClosed is returned by [Redialer.Send] after [Redialer.CloseSend].
var ErrSendClosed = errors.New("tether: Send after CloseSend")

// Redialer is a client that survives the hub going away: it reconnects with
// exponential backoff and jitter, and keeps what is sent while disconnected
// in a bounded outbox that it delivers, in order, once connected again.
//
// What is guaranteed across a lost connection: a message still in the
// outbox is never lost, and messages arrive in the order sent. A message
// already written to the old connection may be lost if the hub died before
// relaying it (it sat in socket buffers or the hub's queues); the protocol
// has no acknowledgements, so the Redialer cannot know, and does not resend
// it (no duplicates either). Messages relayed while this client was
// disconnected are not replayed.
//
// Set the fields, then call Run once in one goroutine, Send from one
// goroutine and Receive from one goroutine. Limits follow [Server]'s rule:
// zero means the default.
type Redialer struct {
	// Dial opens a connection to the hub. Required.
	Dial func(ctx context.Context) (net.Conn, error)
	// Codec frames messages. Required.
	Codec Codec
	// MaxFrame bounds sent and received messages (default DefaultMaxFrame).
	MaxFrame int
	// Outbox and OutboxBytes bound what is kept while disconnected or
	// behind, in messages and bytes (defaults DefaultOutbox and
	// DefaultOutboxBytes). Send waits while the outbox is full.
	Outbox      int
	OutboxBytes int64
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from one to the other with ±50% jitter (defaults
	// DefaultMinBackoff and DefaultMaxBackoff).
	MinBackoff, MaxBackoff time.Duration
	// OnLost, OnConnected and OnOutboxFull, when set, report the state for a
	// person: the connection was lost or could not be made (with why and
	// how many messages wait), a connection is up (after how many failed
	// attempts), the outbox is full and Send now waits.
	OnLost       func(err error, queued int)
	OnConnected  func(conn net.Conn, failed int)
	OnOutboxFull func(size int)

	once    sync.Once
	started atomic.Bool
	recv    chan []byte

	mu         sync.Mutex
	box        [][]byte      // the outbox, oldest first
	boxBytes   int64         // bytes in box
	space      chan struct{} // closed when room frees (made on demand)
	avail      chan struct{} // cap 1: the outbox has messages
	closing    chan struct{} // closed by CloseSend
	sendClosed bool
	fullSaid   bool   // OnOutboxFull was called for the current full spell
	scratch    []byte // Send's buffer for checking that a message can be framed
}

func (r *Redialer) init() {
	r.once.Do(func() {
		r.recv = make(chan []byte, 64)
		r.avail = make(chan struct{}, 1)
		r.closing = make(chan struct{})
	})
}

func (r *Redialer) limits() (msgs int, bytes int64, frame int) {
	return limit(r.Outbox, DefaultOutbox), limit(r.OutboxBytes, int64(DefaultOutboxBytes)), LimitOrDefault(r.MaxFrame)
}

func (r *Redialer) check() error {
	switch {
	case r.Dial == nil || r.Codec == nil:
		return errors.New("tether: a Redialer needs Dial and Codec set")
	case r.MaxFrame < 0 || r.Outbox < 0 || r.OutboxBytes < 0 || r.MinBackoff < 0 || r.MaxBackoff < 0:
		return errors.New("tether: a Redialer's limits cannot be negative: use 0 for the defaults")
	}
	return nil
}

// Send copies msg into the outbox. It refuses at once a message that can
// never be sent (over MaxFrame, or one the codec cannot carry), and waits
// while the outbox is full (saying so once through OnOutboxFull) until ctx
// ends.
func (r *Redialer) Send(ctx context.Context, msg []byte) error {
	r.init()
	if err := r.check(); err != nil {
		return err
	}
	maxMsgs, maxBytes, maxFrame := r.limits()
	if len(msg) > maxFrame {
		return &FrameTooLargeError{Codec: r.Codec.Name(), Size: int64(len(msg)), Limit: maxFrame, Hint: "refused before sending"}
	}
	if int64(len(msg)) > maxBytes {
		return fmt.Errorf("tether: a message of %d bytes can never fit in an outbox of %d bytes: raise OutboxBytes", len(msg), maxBytes)
	}
	m := append([]byte(nil), msg...)
	for {
		r.mu.Lock()
		if r.sendClosed {
			r.mu.Unlock()
			return ErrSendClosed
		}
		var err error
		if r.scratch, err = r.Codec.AppendFrame(r.scratch[:0], msg); err != nil {
			r.mu.Unlock()
			return err
		}
		if len(r.box) < maxMsgs && r.boxBytes+int64(len(m)) <= maxBytes {
			r.box = append(r.box, m)
			r.boxBytes += int64(len(m))
			r.fullSaid = false
			r.mu.Unlock()
			select {
			case r.avail <- struct{}{}:
			default:
			}
			return nil
		}
		if r.space == nil {
			r.space = make(chan struct{})
		}
		space, say := r.space, !r.fullSaid
		r.fullSaid = true
		r.mu.Unlock()
		if say && r.OnOutboxFull != nil {
			r.OnOutboxFull(maxMsgs)
		}
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take removes the oldest message from the outbox, or returns nil.
func (r *Redialer) take() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.box) == 0 {
		return nil
	}
	m := r.box[0]
	r.box[0] = nil
	r.box = r.box[1:]
	r.boxBytes -= int64(len(m))
	if r.space != nil {
		close(r.space)
		r.space = nil
	}
	if len(r.box) > 0 {
		select {
		case r.avail <- struct{}{}:
		default:
		}
	}
	return m
}

// queued returns the messages in the outbox.
func (r *Redialer) queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.box)
}

// CloseSend says no more messages will be sent: Run delivers the outbox,
// ends the sending side, waits for the hub to close, and returns nil.
func (r *Redialer) CloseSend() {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.sendClosed {
		r.sendClosed = true
		close(r.closing)
	}
}

// Receive returns the next message received on any connection. It returns
// io.EOF after Run has returned.
func (r *Redialer) Receive() ([]byte, error) {
	r.init()
	m, ok := <-r.recv
	if !ok {
		return nil, io.EOF
	}
	return m, nil
}

// permanentError is a failure that reconnecting cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Run keeps a connection up until ctx ends or, after CloseSend, until
// everything is delivered (returning nil). When ctx ends it returns ctx's
// error, joined with the last failure to connect when there was one. It may
// be called once.
func (r *Redialer) Run(ctx context.Context) error {
	r.init()
	if !r.started.CompareAndSwap(false, true) {
		return ErrRedialerUsed
	}
	defer close(r.recv)
	if err := r.check(); err != nil {
		return err
	}
	var pending []byte // taken from the outbox, not yet written
	failed := 0
	var lastErr error
	ended := func() error {
		if lastErr != nil {
			return fmt.Errorf("%w (last failure: %w)", ctx.Err(), lastErr)
		}
		return ctx.Err()
	}
	for {
		conn, err := r.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				if lastErr == nil {
					lastErr = err
				}
				return ended()
			}
			lastErr = err
			failed++
			if failed == 1 && r.OnLost != nil {
				r.OnLost(err, r.queued())
			}
			if sleepCtx(ctx, r.backoff(failed)) != nil {
				return ended()
			}
			continue
		}
		if r.OnConnected != nil {
			r.OnConnected(conn, failed)
		}
		failed, lastErr = 0, nil
		done, err := r.serve(ctx, conn, &pending)
		if done {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		if ctx.Err() != nil {
			return ended()
		}
		lastErr = err
		if r.OnLost != nil {
			n := r.queued()
			if pending != nil {
				n++
			}
			r.OnLost(err, n)
		}
		failed = 1
		if sleepCtx(ctx, r.backoff(failed)) != nil {
			return ended()
		}
	}
}

// serve runs one connection: it sends the outbox and relays what arrives,
// until the connection fails (false) or, after CloseSend, the hub closes it
// having taken everything (true).
func (r *Redialer) serve(ctx context.Context, conn net.Conn, pending *[]byte) (bool, error) {
	cl := NewClient(conn, r.Codec, r.MaxFrame)
	lost := make(chan error, 1)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	defer func() {
		close(quit)
		cl.Close()
		<-readerDone // Run closes r.recv after the last serve: no send may follow
	}()
	go func() {
		defer close(readerDone)
		for {
			m, err := cl.Receive()
			if err != nil {
				lost <- err
				return
			}
			select {
			case r.recv <- append([]byte(nil), m...):
			case <-quit:
				return
			case <-ctx.Done():
				lost <- ctx.Err()
				return
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	for {
		if *pending == nil {
			*pending = r.take()
		}
		if *pending == nil {
			select {
			case <-r.avail:
				continue
			case <-r.closing:
				if *pending = r.take(); *pending != nil {
					break
				}
				if err := cl.CloseWrite(); err != nil {
					return false, err
				}
				err := <-lost
				if errors.Is(err, io.EOF) {
					return true, nil
				}
				return false, err
			case err := <-lost:
				if errors.Is(err, io.EOF) {
					err = errors.New("the hub closed the connection")
				}
				return false, err
			}
		}
		if err := cl.Queue(*pending); err != nil {
			if errors.Is(err, ErrUnrepresentable) || errors.Is(err, ErrFrameTooLarge) {
				return false, &permanentError{err} // Send checks for these: only a codec that changed its mind gets here
			}
			return false, err
		}
		// Written (or buffered to be written by the next Flush) once
		// queued; flush whenever nothing more is waiting.
		*pending = nil
		if r.queued() == 0 {
			if err := cl.Flush(); err != nil {
				return false, err
			}
		}
	}
}

func (r *Redialer) backoff(failed int) time.Duration {
	lo := limit(r.MinBackoff, DefaultMinBackoff)
	hi := max(limit(r.MaxBackoff, DefaultMaxBackoff), lo)
	d := lo
	for i := 1; i < failed && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
