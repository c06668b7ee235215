//go:build unix

package main_test

// The hand-written CLI the end-to-end benchmarks measure tether against: the
// program a good engineer writes in an afternoon, of the same shape as
// "tether serve" and "tether connect". The test binary runs it when
// TETHER_HAND is set (see TestMain).
//
//   - serve: one reader goroutine per client; each client's outbound frames
//     go through a bounded channel drained by its own writer goroutine into
//     a 64 KiB bufio.Writer, flushed when nothing more is queued; every
//     received message is also printed to standard output as "#N: text", as
//     one more receiver of the same kind, off the relay path.
//   - connect: standard input through a 64 KiB bufio.Reader, frames through
//     a 64 KiB bufio.Writer flushed when no further input is buffered;
//     received messages printed through a bufio.Writer flushed when no
//     further message is buffered. At the end of input it half-closes and
//     prints until the hub closes.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
)

// handMain runs the hand-written CLI: TETHER_HAND is serve, connect or
// recv; TETHER_HAND_NET, _ADDR and _CODEC say where and how.
func handMain(mode string) {
	network, addr, codec := os.Getenv("TETHER_HAND_NET"), os.Getenv("TETHER_HAND_ADDR"), os.Getenv("TETHER_HAND_CODEC")
	var err error
	switch mode {
	case "serve":
		err = handServe(network, addr, codec)
	default:
		err = handConnect(network, addr, codec, mode == "recv")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hand:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// readFrame reads one message in codec from r.
func readFrame(r *bufio.Reader, codec string, buf []byte) ([]byte, error) {
	if codec == "line" {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		return line[:len(line)-1], nil
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(head[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// frame returns msg framed in codec, in a new slice.
func frame(msg []byte, codec string) []byte {
	if codec == "line" {
		f := make([]byte, len(msg)+1)
		copy(f, msg)
		f[len(msg)] = '\n'
		return f
	}
	f := make([]byte, 4+len(msg))
	binary.BigEndian.PutUint32(f, uint32(len(msg)))
	copy(f[4:], msg)
	return f
}

type handClient struct {
	id   int
	conn net.Conn
	out  chan []byte
}

func handServe(network, addr, codec string) error {
	l, err := net.Listen(network, addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "serving %s://%s\n", network, l.Addr())
	var mu sync.Mutex
	clients := map[*handClient]bool{}
	printer := make(chan []byte, 1024)
	go drain(os.Stdout, printer, nil)
	for id := 1; ; id++ {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		hc := &handClient{id: id, conn: c, out: make(chan []byte, 1024)}
		mu.Lock()
		clients[hc] = true
		mu.Unlock()
		printer <- []byte(fmt.Sprintf("#%d connected\n", id))
		go drain(c, hc.out, c)
		go func() {
			r := bufio.NewReaderSize(c, 64<<10)
			name := "#" + strconv.Itoa(hc.id) + ": "
			var others []*handClient
			var scratch []byte
			for {
				msg, err := readFrame(r, codec, scratch)
				if err != nil {
					break
				}
				scratch = msg[:0]
				f := frame(msg, codec)
				line := make([]byte, 0, len(name)+len(msg)+1)
				line = append(append(append(line, name...), msg...), '\n')
				printer <- line
				others = others[:0]
				mu.Lock()
				for o := range clients {
					if o != hc {
						others = append(others, o)
					}
				}
				mu.Unlock()
				for _, o := range others {
					o.out <- f
				}
			}
			mu.Lock()
			delete(clients, hc)
			mu.Unlock()
			close(hc.out)
			printer <- []byte(fmt.Sprintf("#%d left\n", hc.id))
		}()
	}
}

// drain writes what arrives on ch to w through a 64 KiB buffer, flushing
// whenever nothing more is queued; when ch closes it half-closes conn.
func drain(w io.Writer, ch chan []byte, conn net.Conn) {
	bw := bufio.NewWriterSize(w, 64<<10)
	for b := range ch {
		bw.Write(b)
		if len(ch) == 0 {
			if bw.Flush() != nil {
				break
			}
		}
	}
	bw.Flush()
	if conn != nil {
		conn.(interface{ CloseWrite() error }).CloseWrite()
		io.Copy(io.Discard, conn)
		conn.Close()
	}
}

func handConnect(network, addr, codec string, recvOnly bool) error {
	c, err := net.Dial(network, addr)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		r := bufio.NewReaderSize(c, 64<<10)
		out := bufio.NewWriterSize(os.Stdout, 64<<10)
		var scratch []byte
		for {
			msg, err := readFrame(r, codec, scratch)
			if err != nil {
				out.Flush()
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
			scratch = msg[:0]
			out.Write(msg)
			out.WriteByte('\n')
			if r.Buffered() == 0 {
				out.Flush()
			}
		}
	}()
	if recvOnly {
		return <-done
	}
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	var head [4]byte
	for {
		line, err := in.ReadSlice('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 || err == nil {
			if codec == "line" {
				w.Write(line)
				w.WriteByte('\n')
			} else {
				binary.BigEndian.PutUint32(head[:], uint32(len(line)))
				w.Write(head[:])
				w.Write(line)
			}
			if in.Buffered() == 0 {
				w.Flush()
			}
		}
		if err != nil {
			break
		}
	}
	w.Flush()
	c.(interface{ CloseWrite() error }).CloseWrite()
	return <-done
}
