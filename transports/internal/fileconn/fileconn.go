// Package fileconn moves a connection's bytes over two files, one read and
// one written (a command's pipes, this process's standard streams): reads,
// writes, closing either side once, deadlines, and errors in the shape a
// net.Conn gives them. The exec and stdio transports are built on it.
package fileconn

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"time"
)

// ErrNoFiles is what Files not made by New answers.
var ErrNoFiles = errors.New("no files: this connection was not made by its transport")

// Files is a read file and a written file used as one connection. A nil or
// zero Files answers every method with ErrNoFiles.
type Files struct {
	r, w           *os.File
	network        string
	addr           net.Addr
	closeR, closeW sync.Once
	errR, errW     error
}

// New uses r and w as one connection; network and addr name it in errors.
func New(network string, addr net.Addr, r, w *os.File) *Files {
	return &Files{r: r, w: w, network: network, addr: addr}
}

func (f *Files) ok() bool { return f != nil && f.r != nil && f.w != nil }

// Read reads the read file.
func (f *Files) Read(p []byte) (int, error) {
	if !f.ok() {
		return 0, ErrNoFiles
	}
	n, err := f.r.Read(p)
	return n, f.netErr("read", err)
}

// Write writes the written file.
func (f *Files) Write(p []byte) (int, error) {
	if !f.ok() {
		return 0, ErrNoFiles
	}
	n, err := f.w.Write(p)
	return n, f.netErr("write", err)
}

// CloseWrite closes the written file, once: its reader sees the end.
func (f *Files) CloseWrite() error {
	if !f.ok() {
		return ErrNoFiles
	}
	f.closeW.Do(func() { f.errW = f.w.Close() })
	return f.errW
}

// CloseRead closes the read file, once.
func (f *Files) CloseRead() error {
	if !f.ok() {
		return ErrNoFiles
	}
	f.closeR.Do(func() { f.errR = f.r.Close() })
	return f.errR
}

// SetDeadline sets both deadlines.
func (f *Files) SetDeadline(t time.Time) error {
	if err := f.SetReadDeadline(t); err != nil {
		return err
	}
	return f.SetWriteDeadline(t)
}

// SetReadDeadline sets the read file's deadline.
func (f *Files) SetReadDeadline(t time.Time) error {
	if !f.ok() {
		return ErrNoFiles
	}
	return f.r.SetReadDeadline(t)
}

// SetWriteDeadline sets the written file's deadline.
func (f *Files) SetWriteDeadline(t time.Time) error {
	if !f.ok() {
		return ErrNoFiles
	}
	return f.w.SetWriteDeadline(t)
}

// netErr turns a file's error into the net.Error a connection gives (a
// timeout stays a timeout, a closed file says net.ErrClosed); io.EOF stays.
func (f *Files) netErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, os.ErrClosed) {
		err = net.ErrClosed
	}
	return &net.OpError{Op: op, Net: f.network, Addr: f.addr, Err: err}
}
