package core

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Defaults for the zero values of [Redialer]'s fields.
const (
	DefaultOutbox     = 10000
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
)

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
// Set the fields, then call Run in one goroutine, Send from one goroutine
// and Receive from one goroutine.
type Redialer struct {
	// Dial opens a connection to the hub. Required.
	Dial func(ctx context.Context) (net.Conn, error)
	// Codec frames messages. Required.
	Codec Codec
	// MaxFrame bounds received messages; 0 means DefaultMaxFrame.
	MaxFrame int
	// Outbox is the most messages kept while disconnected or behind; 0
	// means DefaultOutbox. Send waits while it is full.
	Outbox int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from one to the other with ±50% jitter; 0 means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// OnLost, OnConnected and OnOutboxFull, when set, report the state for a
	// person: the connection was lost (with why and how many messages wait),
	// a connection is up (after how many failed attempts), the outbox is
	// full and Send now waits.
	OnLost       func(err error, queued int)
	OnConnected  func(conn net.Conn, failed int)
	OnOutboxFull func(size int)

	once     sync.Once
	outbox   chan []byte
	recv     chan []byte
	closing  chan struct{}
	closeMu  sync.Once
	fullOnce sync.Once
}

func (r *Redialer) init() {
	r.once.Do(func() {
		n := r.Outbox
		if n <= 0 {
			n = DefaultOutbox
		}
		r.outbox = make(chan []byte, n)
		r.recv = make(chan []byte, 64)
		r.closing = make(chan struct{})
	})
}

// Send copies msg into the outbox. It waits while the outbox is full (and
// says so once through OnOutboxFull) until ctx ends.
func (r *Redialer) Send(ctx context.Context, msg []byte) error {
	r.init()
	m := append([]byte(nil), msg...)
	select {
	case r.outbox <- m:
		return nil
	default:
	}
	if r.OnOutboxFull != nil {
		r.fullOnce.Do(func() { r.OnOutboxFull(cap(r.outbox)) })
	}
	select {
	case r.outbox <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CloseSend says no more messages will be sent: Run delivers the outbox,
// ends the sending side, waits for the hub to close, and returns nil.
func (r *Redialer) CloseSend() {
	r.init()
	r.closeMu.Do(func() { close(r.closing) })
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

// Run keeps a connection up until ctx ends (returning ctx's error) or, after
// CloseSend, until everything is delivered (returning nil).
func (r *Redialer) Run(ctx context.Context) error {
	r.init()
	defer close(r.recv)
	var pending []byte // taken from the outbox, not yet written
	failed := 0
	for {
		conn, err := r.Dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			if failed == 1 && r.OnLost != nil {
				r.OnLost(err, len(r.outbox))
			}
			if err := sleepCtx(ctx, r.backoff(failed)); err != nil {
				return err
			}
			continue
		}
		if r.OnConnected != nil {
			r.OnConnected(conn, failed)
		}
		failed = 0
		done, err := r.serve(ctx, conn, &pending)
		if done {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if r.OnLost != nil {
			n := len(r.outbox)
			if pending != nil {
				n++
			}
			r.OnLost(err, n)
		}
		failed = 1
		if err := sleepCtx(ctx, r.backoff(failed)); err != nil {
			return err
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
			select {
			case m := <-r.outbox:
				*pending = m
			case <-r.closing:
				select {
				case m := <-r.outbox:
					*pending = m
				default:
					if err := cl.CloseWrite(); err != nil {
						return false, err
					}
					err := <-lost
					if errors.Is(err, io.EOF) {
						return true, nil
					}
					return false, err
				}
			case err := <-lost:
				if errors.Is(err, io.EOF) {
					err = errors.New("the hub closed the connection")
				}
				return false, err
			}
		}
		if err := cl.Queue(*pending); err != nil {
			return false, err
		}
		// Written (or buffered to be written by the next Flush) once
		// queued; flush whenever nothing more is waiting.
		*pending = nil
		if len(r.outbox) == 0 {
			if err := cl.Flush(); err != nil {
				return false, err
			}
		}
	}
}

func (r *Redialer) backoff(failed int) time.Duration {
	lo, hi := r.MinBackoff, r.MaxBackoff
	if lo <= 0 {
		lo = DefaultMinBackoff
	}
	if hi <= 0 {
		hi = DefaultMaxBackoff
	}
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
