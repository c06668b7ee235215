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
// as it can: small frames are copied together, large ones are passed by
// reference, and the lot goes out in one vectored write where the connection
// supports it.
type writer struct {
	conn  net.Conn
	stall time.Duration // 0: no stall detection
	total time.Duration // 0: no bound on one batch's time
	bufs  net.Buffers   // reused backing array for the vectored write
}

// write sends every frame of batch and returns the bytes of frames sent. A
// write that makes no progress for the stall timeout fails with ErrStalled.
func (w *writer) write(batch [][]byte) (int, error) {
	bp := batchPool.Get().(*[]byte)
	scratch := (*bp)[:0]
	bufs := w.bufs[:0]
	total, run := 0, -1
	for _, f := range batch {
		total += len(f)
		if len(f) < smallFrame && len(scratch)+len(f) <= cap(scratch) {
			if run < 0 {
				run = len(scratch)
			}
			scratch = append(scratch, f...)
			continue
		}
		if run >= 0 {
			bufs = append(bufs, scratch[run:])
			run = -1
		}
		bufs = append(bufs, f)
	}
	if run >= 0 {
		bufs = append(bufs, scratch[run:])
	}
	w.bufs = bufs[:0] // keep the backing array: WriteTo consumes its own copy
	used := len(bufs)
	err := w.send(&bufs)
	clear(w.bufs[:used])
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
