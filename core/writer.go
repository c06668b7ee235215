package core

import (
	"net"
	"sync"
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
// write where the connection supports it.
type writer struct {
	conn  net.Conn
	stall time.Duration // 0: no stall detection
	total time.Duration // 0: no bound on one batch's time
	vec   net.Buffers   // reused backing array for the vectored write
	out   net.Buffers   // the slice WriteTo consumes (a field: no allocation)
	held  []*frame      // large frames referenced by vec until written
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
	w.vec = vec[:0] // keep the backing array: WriteTo consumes the slice it is given
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
		n, err := bufs.WriteTo(w.conn)
		if err == nil {
			return nil
		}
		if isTimeout(err) {
			if w.total > 0 && time.Since(start) >= w.total {
				return &LimitError{What: "write timeout", Limit: w.total.String(), Err: err}
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
