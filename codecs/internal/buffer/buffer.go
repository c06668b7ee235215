// Package buffer is the read buffer shared by the built-in codecs: a window
// over a byte stream that grows on demand up to a fixed maximum and is
// allocated only when the first read needs it.
package buffer

import (
	"errors"
	"io"
	"os"
)

// initialSize is the first allocation; most messages fit in it.
const initialSize = 4096

// ErrFull is returned by Fill when the window already holds max bytes.
var ErrFull = errors.New("buffer full")

// Reader is a growable read window over an io.Reader.
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	max        int
	err        error // sticky error from r
}

// New returns a Reader over r whose window never exceeds max bytes.
func New(r io.Reader, max int) *Reader {
	return &Reader{r: r, max: max}
}

// Init sets up a Reader value in place, for embedding without an allocation.
func (b *Reader) Init(r io.Reader, max int) {
	*b = Reader{r: r, max: max}
}

// Buffered returns the bytes read but not yet discarded. The slice is valid
// until the next call to Fill.
func (b *Reader) Buffered() []byte { return b.buf[b.start:b.end] }

// keepSize is the largest buffer kept once empty: a connection that sent
// one large message does not hold a large buffer for the rest of its life.
const keepSize = 64 << 10

// Discard drops the first n buffered bytes.
func (b *Reader) Discard(n int) {
	b.start += n
	if b.start == b.end {
		b.start, b.end = 0, 0
		if len(b.buf) > keepSize {
			b.buf = nil
		}
	}
}

// Err returns the sticky error from the underlying reader, if any.
func (b *Reader) Err() error { return b.err }

// Fill reads at least one more byte into the window. It returns ErrFull when
// the window holds max bytes, and the underlying reader's error once the
// stream is done (io.EOF at a clean end).
func (b *Reader) Fill() error {
	if b.err != nil {
		return b.err
	}
	if b.end-b.start >= b.max {
		return ErrFull
	}
	if b.end == len(b.buf) {
		b.makeRoom()
	}
	for tries := 0; tries < 100; tries++ {
		n, err := b.r.Read(b.buf[b.end:])
		b.end += n
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A deadline is not the end of the stream: the caller may
				// extend it and read on, with what is buffered kept.
				if n > 0 {
					return nil
				}
				return err
			}
			b.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	b.err = io.ErrNoProgress
	return b.err
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

// makeRoom makes space after end: by moving the buffered bytes to the front,
// or by growing the buffer (doubling, capped at max).
func (b *Reader) makeRoom() {
	n := b.end - b.start
	if b.buf == nil {
		b.buf = make([]byte, min(initialSize, b.max))
		return
	}
	if b.start > 0 && n < len(b.buf)/2 {
		copy(b.buf, b.buf[b.start:b.end])
		b.start, b.end = 0, n
		return
	}
	size := min(max(2*len(b.buf), initialSize), b.max)
	if size <= len(b.buf) { // full at max: compact only
		copy(b.buf, b.buf[b.start:b.end])
		b.start, b.end = 0, n
		return
	}
	nb := make([]byte, size)
	copy(nb, b.buf[b.start:b.end])
	b.buf = nb
	b.start, b.end = 0, n
}
