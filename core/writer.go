package core

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// smallFrame is the size under which frames are copied into one contiguous
// batch before writing; larger frames are handed to the kernel in place.
const smallFrame = 2048

// batchSize is the capacity of a batch buffer.
const batchSize = 64 << 10

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, batchSize); return &b }}

// writer writes batches of frames to a connection with as few system calls
// as it can: small frames are copied together (and released at once),
// large ones are passed by reference, and the lot goes out in one vectored
// write when the connection is a socket the engine may use directly
// ([SocketOf]); any other connection gets one Write per piece.
type writer struct {
	conn   net.Conn
	socket net.Conn      // the socket behind conn, or nil: write through conn.Write
	now    nowWriter     // non-blocking writes to the socket, when this system has them
	stall  time.Duration // 0: no stall detection
	total  time.Duration // 0: no bound on one batch's time
	vec    net.Buffers   // reused backing array for the vectored write
	out    net.Buffers   // the slice being written (a field: no allocation)
	held   []*frame      // large frames referenced by vec until written
}

// init sets the writer up in place: its non-blocking writer keeps a
// closure over its own fields, so the writer must not be copied after.
func (w *writer) init(conn net.Conn, stall, total time.Duration) {
	*w = writer{conn: conn, stall: stall, total: total}
	if s, ok := SocketOf(conn); ok {
		w.socket = s
		if sc, ok := s.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				w.now.init(raw)
			}
		}
	}
}

// write sends every frame of batch, releasing each, and returns the bytes of
// frames sent. A write that makes no progress for the stall timeout fails
// with ErrStalled.
func (w *writer) write(batch []*frame) (int, error) {
	bp := batchPool.Get().(*[]byte)
	scratch := (*bp)[:0]
	vec := w.vec[:0]
	held := w.held[:0]
	total, run := 0, -1
	for _, f := range batch {
		total += len(f.buf)
		if len(f.buf) < smallFrame && len(scratch)+len(f.buf) <= cap(scratch) {
			if run < 0 {
				run = len(scratch)
			}
			scratch = append(scratch, f.buf...)
			f.release()
			continue
		}
		if run >= 0 {
			vec = append(vec, scratch[run:])
			run = -1
		}
		vec = append(vec, f.buf)
		held = append(held, f)
	}
	if run >= 0 {
		vec = append(vec, scratch[run:])
	}
	used := len(vec)
	w.vec = vec[:0] // keep the backing array: the write consumes the slice it is given
	w.out = vec
	err := w.send(&w.out)
	clear(w.vec[:used])
	for _, f := range held {
		f.release()
	}
	clear(held)
	w.held = held[:0]
	*bp = scratch[:0]
	batchPool.Put(bp)
	return total, err
}

func (w *writer) send(bufs *net.Buffers) error {
	var start time.Time
	if w.total > 0 {
		start = time.Now()
	}
	for len(*bufs) > 0 {
		if w.stall > 0 || w.total > 0 {
			w.conn.SetWriteDeadline(w.deadline(start))
		}
		var n int64
		var err error
		if w.socket != nil {
			n, err = bufs.WriteTo(w.socket)
		} else {
			n, err = writeEach(w.conn, bufs)
		}
		if err == nil {
			return nil
		}
		if isTimeout(err) {
			if w.total > 0 && time.Since(start) >= w.total {
				return &TimeoutError{Limit: ErrWriteTimeout, Timeout: w.total, Err: err}
			}
			if n > 0 {
				continue // slow, but moving: nothing is lost
			}
			return ErrStalled
		}
		return err
	}
	return nil
}

// writeEach writes each buffer through c.Write, consuming what was written,
// as net.Buffers.WriteTo does for a writer without vectored writes.
func writeEach(c net.Conn, bufs *net.Buffers) (int64, error) {
	var total int64
	for len(*bufs) > 0 {
		b := (*bufs)[0]
		n, err := c.Write(b)
		total += int64(n)
		if n < len(b) {
			(*bufs)[0] = b[n:]
			if err == nil {
				continue
			}
			return total, err
		}
		(*bufs)[0] = nil
		*bufs = (*bufs)[1:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// deadline is the sooner of the stall deadline and the batch's deadline.
func (w *writer) deadline(start time.Time) time.Time {
	var d time.Time
	if w.stall > 0 {
		d = time.Now().Add(w.stall)
	}
	if w.total > 0 {
		if end := start.Add(w.total); d.IsZero() || end.Before(d) {
			d = end
		}
	}
	return d
}
