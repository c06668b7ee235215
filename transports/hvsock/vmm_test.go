package hvsock_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// vmm emulates the host side of a Firecracker vsock device, written from
// Firecracker's documented protocol: it listens on the device's unix socket;
// a host connection sends "CONNECT <port>\n"; if a guest listens on that
// port the VMM answers "OK <hostport>\n" and from then on the connection is
// the guest's stream; if not, it closes the connection.
type vmm struct {
	t    *testing.T
	path string
	l    net.Listener

	mu        sync.Mutex
	guests    map[uint32]guest // guest-side listeners by vsock port
	reply     func(port uint32) string
	bridgeAll bool
}

// guest is what a guest program does with a connection the host opened. It
// returns the bytes the guest sends first; the VMM writes them in the same
// write as the acknowledgement, as a busy guest can make happen for real.
type guest func(c net.Conn) (greeting []byte, then func(c net.Conn))

func newVMM(t *testing.T) *vmm {
	dir, err := os.MkdirTemp("", "fc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	v := &vmm{t: t, path: filepath.Join(dir, "v.sock"), guests: map[uint32]guest{}}
	v.l, err = net.Listen("unix", v.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.l.Close() })
	go v.serve()
	return v
}

func (v *vmm) listen(port uint32, g guest) {
	v.mu.Lock()
	v.guests[port] = g
	v.mu.Unlock()
}

func (v *vmm) serve() {
	nextHostPort := uint32(1 << 30)
	for {
		c, err := v.l.Accept()
		if err != nil {
			return
		}
		nextHostPort++
		go v.handle(c, nextHostPort)
	}
}

func (v *vmm) handle(c net.Conn, hostPort uint32) {
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		c.Close()
		return
	}
	port, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(line, "CONNECT "), "\n"), 10, 32)
	if err != nil || !strings.HasPrefix(line, "CONNECT ") {
		c.Close()
		return
	}
	v.mu.Lock()
	g, ok := v.guests[uint32(port)]
	reply, bridgeAll := v.reply, v.bridgeAll
	v.mu.Unlock()
	if bridgeAll {
		g, ok = v.splice(uint32(port))
	}
	if reply != nil {
		c.Write([]byte(reply(uint32(port))))
		c.Close()
		return
	}
	if !ok {
		c.Close() // Firecracker: nobody listens on that guest port
		return
	}
	if br.Buffered() > 0 {
		v.t.Errorf("the host sent %d bytes after CONNECT before the acknowledgement", br.Buffered())
	}
	greeting, then := g(c)
	ack := "OK " + strconv.FormatUint(uint64(hostPort), 10) + "\n"
	if _, err := c.Write(append([]byte(ack), greeting...)); err != nil {
		c.Close()
		return
	}
	if then != nil {
		then(c)
	}
}

// forwardToHost plays a guest that connects to host port p: the VMM dials
// PATH_p, as Firecracker does for guest-initiated connections.
func (v *vmm) forwardToHost(p uint32) (net.Conn, error) {
	return net.Dial("unix", v.path+"_"+strconv.FormatUint(uint64(p), 10))
}

// echoGuest greets, then echoes until EOF and half-closes.
func echoGuest(greeting string) guest {
	return func(net.Conn) ([]byte, func(net.Conn)) {
		return []byte(greeting), func(c net.Conn) {
			io.Copy(c, c)
			c.(*net.UnixConn).CloseWrite()
			c.Close()
		}
	}
}

// bridge makes the VMM connect every CONNECT to port P through to the unix
// socket PATH_P, as if a guest program listened there: a loopback VMM, so
// that the conformance suite can run Dial and Listen against each other.
func (v *vmm) bridge() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.reply = nil
	v.bridgeAll = true
}

// splice returns a guest that relays to PATH_port, or false when nothing
// listens there (the VMM then closes, like a guest port nobody listens on).
func (v *vmm) splice(port uint32) (guest, bool) {
	far, err := v.forwardToHost(port)
	if err != nil {
		return nil, false
	}
	return func(net.Conn) ([]byte, func(net.Conn)) {
		return nil, func(c net.Conn) {
			done := make(chan struct{})
			go func() {
				io.Copy(far, c)
				far.(*net.UnixConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, far)
			c.(*net.UnixConn).CloseWrite()
			<-done
			c.Close()
			far.Close()
		}
	}, true
}
