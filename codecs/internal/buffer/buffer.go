// Package buffer is the read buffer shared by the built-in codecs: a window
// over a byte stream that grows on demand up to a fixed maximum.
//
// An idle connection holds no buffer: when every buffered byte has been
// consumed the buffer goes back to a pool. On a socket the engine may read
// directly (core.SocketOf: the standard socket types, or a connection that
// opts in), the read goes through the socket's RawConn, so that the buffer
// is given back while the reader waits for data and taken again only when
// data is there: ten thousand idle connections cost no read buffers at all,
// and a busy one still reads with one system call. Any other reader is read
// through its Read method, so a connection that decrypts or counts what it
// reads is never bypassed.
package buffer

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"github.com/tetherkit/tether/core"
)

// poolSize is the size of pooled buffers: large enough that a busy stream
// of small messages needs one read system call per 64 KiB.
const poolSize = 64 << 10

// bigSize is the second pooled size, for streams of large frames.
const bigSize = 4 * poolSize

var (
	pool    = sync.Pool{New: func() any { b := make([]byte, poolSize); return &b }}
	bigPool = sync.Pool{New: func() any { b := make([]byte, bigSize); return &b }}
)

// put returns a pooled buffer to the pool of its size.
func put(p *[]byte) {
	if len(*p) == bigSize {
		bigPool.Put(p)
	} else {
		pool.Put(p)
	}
}

// ErrFull is returned by Fill when the window already holds max bytes.
var ErrFull = errors.New("buffer full")

// Reader is a growable read window over an io.Reader.
type Reader struct {
	r          io.Reader
	raw        syscall.RawConn // set when r is a socket: read without holding a buffer while waiting
	rawChecked bool
	readFn     func(fd uintptr) bool // made once: a closure per read would allocate
	rn         int                   // the result of readFn's read
	rerr       error
	buf        []byte
	pooled     *[]byte               // buf came from the pool
	big        bool                  // the stream has needed a big buffer: take one at once
	budget     func(delta int) error // asked before holding a buffer larger than poolSize
	charged    int                   // bytes of the buffer held on the budget
	start, end int
	max        int
	err        error // sticky error from r
}

// Init sets up a Reader value in place, for embedding without an allocation.
func (b *Reader) Init(r io.Reader, max int) {
	*b = Reader{r: r, max: max}
}

// Buffered returns the bytes read but not yet discarded. The slice is valid
// until the next call to Fill or Discard.
func (b *Reader) Buffered() []byte { return b.buf[b.start:b.end] }

// Discard drops the first n buffered bytes. Once nothing is buffered, the
// buffer is given back.
func (b *Reader) Discard(n int) {
	b.start += n
	if b.start == b.end {
		b.start, b.end = 0, 0
		b.giveBack()
	}
}

func (b *Reader) giveBack() {
	if b.pooled != nil {
		put(b.pooled)
	}
	b.buf, b.pooled = nil, nil
	b.refund()
}

// SetBudget makes the reader ask budget(n) before it holds a buffer of n
// bytes larger than the pooled size, and give them back with budget(-n). A
// non-nil answer refuses the growth: Fill returns that error.
func (b *Reader) SetBudget(budget func(delta int) error) { b.budget = budget }

// Release gives the buffer back, and its bytes to the budget: the stream is
// done.
func (b *Reader) Release() {
	b.start, b.end = 0, 0
	b.giveBack()
}

func (b *Reader) charge(n int) error {
	if b.budget == nil {
		return nil
	}
	if err := b.budget(n); err != nil {
		return err
	}
	b.charged = n
	return nil
}

func (b *Reader) refund() {
	if b.charged > 0 {
		b.budget(-b.charged)
		b.charged = 0
	}
}

// Fill reads at least one more byte into the window. It returns ErrFull when
// the window holds max bytes, and the underlying reader's error once the
// stream is done (io.EOF at a clean end). A passed read deadline is
// returned but not kept: the caller may extend it and call again.
func (b *Reader) Fill() error {
	if b.err != nil {
		return b.err
	}
	if b.end-b.start >= b.max {
		return ErrFull
	}
	if !b.rawChecked {
		b.initRaw()
	}
	if b.raw != nil {
		return b.fillRaw()
	}
	if b.needRoom() {
		if err := b.makeRoom(); err != nil {
			return b.fail(err)
		}
	}
	for tries := 0; tries < 100; tries++ {
		n, err := b.r.Read(b.buf[b.end:])
		b.end += n
		if err != nil {
			if n > 0 && !errors.Is(err, os.ErrDeadlineExceeded) {
				b.err = err
				return nil
			}
			return b.fail(err)
		}
		if n > 0 {
			return nil
		}
	}
	b.err = io.ErrNoProgress
	return b.err
}

// fail records err unless it is a deadline, and gives the buffer back when
// it holds nothing.
func (b *Reader) fail(err error) error {
	if b.start == b.end {
		b.giveBack()
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		b.err = err
	}
	return err
}

func (b *Reader) initRaw() {
	b.rawChecked = true
	c, ok := b.r.(net.Conn)
	if !ok {
		return
	}
	sock, ok := core.SocketOf(c)
	if !ok {
		return
	}
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil || !rawReads {
		return
	}
	b.raw = raw
	b.readFn = func(fd uintptr) bool {
		if b.needRoom() {
			if err := b.makeRoom(); err != nil {
				b.rerr = err
				return true
			}
		}
		n, wait, err := readFD(fd, b.buf[b.end:])
		if wait {
			if b.start == b.end {
				b.giveBack() // hold nothing while waiting
			}
			return false
		}
		b.rn, b.rerr = n, err
		return true
	}
}

// fillRaw reads through the socket's RawConn: one read when data is there;
// otherwise it waits in the poller holding no buffer.
func (b *Reader) fillRaw() error {
	b.rn, b.rerr = 0, nil
	if err := b.raw.Read(b.readFn); err != nil {
		return b.fail(asRead(err)) // a passed deadline, or the connection closed
	}
	if b.rerr != nil {
		return b.fail(b.rerr)
	}
	if b.rn == 0 {
		return b.fail(io.EOF)
	}
	b.end += b.rn
	return nil
}

// asRead names a RawConn's "raw-read" failure as the read it is.
func asRead(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "raw-read" {
		cp := *op
		cp.Op = "read"
		return &cp
	}
	return err
}

// minRead is the least free space a read is given when the window can make
// it: reading the last few bytes of a buffer one system call at a time is
// what makes a framing layer slow.
const minRead = 8 << 10

// needRoom reports whether to compact or grow before reading.
func (b *Reader) needRoom() bool {
	if b.buf == nil {
		return true
	}
	free := len(b.buf) - b.end
	return free == 0 || free < minRead && (b.start > 0 || len(b.buf) < b.max)
}

// Need fills until at least n bytes are buffered (n <= max).
func (b *Reader) Need(n int) error {
	for b.end-b.start < n {
		if err := b.Fill(); err != nil {
			return err
		}
	}
	return nil
}

// makeRoom makes space after end: by taking a buffer, by moving the
// buffered bytes to the front, or by growing (doubling, capped at max).
func (b *Reader) makeRoom() error {
	n := b.end - b.start
	if b.buf == nil {
		if b.big && b.max >= bigSize && b.charge(bigSize) == nil {
			b.pooled = bigPool.Get().(*[]byte)
			b.buf = *b.pooled
		} else if b.max >= poolSize {
			b.pooled = pool.Get().(*[]byte)
			b.buf = *b.pooled
		} else {
			b.buf = make([]byte, b.max)
		}
		return nil
	}
	if b.start > 0 && n < len(b.buf)/2 {
		copy(b.buf, b.buf[b.start:b.end])
		b.start, b.end = 0, n
		return nil
	}
	// Grow at least fourfold past the pooled size: with room for several
	// large frames, the partial frame left at the end is moved to the
	// front once every few frames rather than after each.
	size := min(max(2*len(b.buf), bigSize), b.max)
	if size <= len(b.buf) { // full at max: compact only
		copy(b.buf, b.buf[b.start:b.end])
		b.start, b.end = 0, n
		return nil
	}
	if b.budget != nil { // ask only for the growth
		if err := b.budget(size - b.charged); err != nil {
			return err
		}
		b.charged = size
	}
	var nb []byte
	var np *[]byte
	b.big = true
	if size == bigSize {
		np = bigPool.Get().(*[]byte)
		nb = *np
	} else {
		nb = make([]byte, size)
	}
	copy(nb, b.buf[b.start:b.end])
	if b.pooled != nil {
		put(b.pooled)
	}
	b.buf, b.pooled = nb, np
	b.start, b.end = 0, n
	return nil
}
