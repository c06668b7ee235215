//go:build unix

package core

import "syscall"

// nowWriter writes to a socket without waiting: what the socket takes at
// once, and nothing more. It lets a sender hand one frame to an idle
// receiver itself, saving the wake-up of the receiver's writer.
type nowWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // made once: a closure per write would allocate
	b   []byte
	n   int
}

func (w *nowWriter) init(raw syscall.RawConn) {
	w.raw = raw
	w.fn = func(fd uintptr) bool {
		for {
			n, err := syscall.Write(int(fd), w.b)
			if err == syscall.EINTR {
				continue
			}
			if err == nil {
				w.n = n
			}
			return true // never wait: what did not fit goes through the queue
		}
	}
}

// write writes what the socket takes of b now and returns how much; 0 when
// it would have to wait, or on an error (the queued write then meets it).
func (w *nowWriter) write(b []byte) int {
	if w.raw == nil {
		return 0
	}
	w.b, w.n = b, 0
	if w.raw.Write(w.fn) != nil {
		w.n = 0
	}
	w.b = nil
	return w.n
}
