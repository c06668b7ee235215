package hvsock_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/hvsock"
)

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestGreetingInAckPacketNotLost: the guest's first bytes arrive in the same
// write as "OK ...\n"; none may be swallowed by the handshake.
func TestGreetingInAckPacketNotLost(t *testing.T) {
	v := newVMM(t)
	v.listen(52, echoGuest("HELLO FROM GUEST\n"))
	c, err := hvsock.Transport{}.Dial(ctxTimeout(t, 5*time.Second), v.path+":52")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, len("HELLO FROM GUEST\n"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "HELLO FROM GUEST\n" {
		t.Fatalf("first bytes from the guest: %q, %v", buf, err)
	}
	c.Write([]byte("ping"))
	c.(interface{ CloseWrite() error }).CloseWrite()
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "ping" {
		t.Fatalf("echo after the greeting: %q, %v", rest, err)
	}
	if got := c.RemoteAddr().String(); got != v.path+":52" {
		t.Fatalf("RemoteAddr %q", got)
	}
	if !strings.HasSuffix(c.LocalAddr().String(), ":1073741825") {
		t.Fatalf("LocalAddr %q should carry the host port the VMM acknowledged", c.LocalAddr())
	}
}

// TestFramedMessagesRightAfterAck runs a codec over the connection: a whole
// frame inside the acknowledgement packet must decode.
func TestFramedMessagesRightAfterAck(t *testing.T) {
	v := newVMM(t)
	frame, _ := length.Codec{}.AppendFrame(nil, []byte("first message"))
	v.listen(7, echoGuest(string(frame)))
	c, err := hvsock.Transport{}.Dial(ctxTimeout(t, 5*time.Second), v.path+":7")
	if err != nil {
		t.Fatal(err)
	}
	cl := core.NewClient(c, length.Codec{}, 0)
	defer cl.Close()
	m, err := cl.Receive()
	if err != nil || string(m) != "first message" {
		t.Fatalf("got %q, %v", m, err)
	}
}

func TestRetriesUntilGuestListens(t *testing.T) {
	v := newVMM(t)
	time.AfterFunc(300*time.Millisecond, func() { v.listen(9, echoGuest("up\n")) })
	start := time.Now()
	c, err := hvsock.Transport{}.Dial(ctxTimeout(t, 10*time.Second), v.path+":9")
	if err != nil {
		t.Fatalf("Dial while the guest comes up: %v", err)
	}
	defer c.Close()
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("connected after %v, before the guest listened", took)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "up\n" {
		t.Fatalf("greeting %q, %v", buf, err)
	}
}

func TestDeadlineWhileGuestNeverListens(t *testing.T) {
	v := newVMM(t)
	start := time.Now()
	_, err := hvsock.Transport{}.Dial(ctxTimeout(t, 400*time.Millisecond), v.path+":10")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not listening") {
		t.Fatalf("got %v, want a deadline error saying the guest is not listening", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Dial took %v past a 400 ms deadline", took)
	}
}

func TestMalformedAck(t *testing.T) {
	for _, reply := range []string{"ERR nope\n", "OK\n", "OK abc\n", "HTTP/1.1 400 Bad Request\r\n", strings.Repeat("x", 100), "OK 12"} {
		t.Run(strings.TrimSpace(reply[:min(len(reply), 10)]), func(t *testing.T) {
			v := newVMM(t)
			v.reply = func(uint32) string { return reply }
			_, err := hvsock.Transport{}.Dial(ctxTimeout(t, 2*time.Second), v.path+":5")
			var ack *hvsock.AckError
			if !errors.As(err, &ack) {
				t.Fatalf("reply %q: got %v, want an AckError", reply, err)
			}
			if !strings.Contains(err.Error(), "Firecracker") {
				t.Fatalf("error %q should say what socket was expected", err)
			}
		})
	}
}

func TestNoVMM(t *testing.T) {
	_, err := hvsock.Transport{}.Dial(ctxTimeout(t, time.Second), "/nonexistent/v.sock:5")
	if err == nil || !strings.Contains(err.Error(), "no VMM listening at /nonexistent/v.sock") {
		t.Fatalf("got %v", err)
	}
}

// TestGuestInitiated: a hub listens for guest connections on PATH_PORT; the
// VMM forwards a guest's connection there.
func TestGuestInitiated(t *testing.T) {
	v := newVMM(t)
	l, err := hvsock.Transport{}.Listen(context.Background(), v.path+":1024")
	if err != nil {
		t.Fatal(err)
	}
	if l.Addr().String() != v.path+":1024" {
		t.Fatalf("listener address %q", l.Addr())
	}
	srv := &core.Server{}
	go srv.Serve(l, length.Codec{})
	defer srv.Close()
	var clients []*core.Client
	for range 2 {
		c, err := v.forwardToHost(1024)
		if err != nil {
			t.Fatalf("the VMM could not reach PATH_1024: %v", err)
		}
		clients = append(clients, core.NewClient(c, length.Codec{}, 0))
	}
	testwait.For(t, "both guests in the room", testwait.Timeout, func() bool { return len(srv.Peers()) == 2 })
	clients[0].Send([]byte("from guest 0"))
	m, err := clients[1].Receive()
	if err != nil || string(m) != "from guest 0" {
		t.Fatalf("got %q, %v", m, err)
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"/run/v.sock:5000":                    "/run/v.sock:5000",
		"/a:b/v.sock:1":                       "/a:b/v.sock:1",
		"rel.sock:0":                          "rel.sock:0",
		":5":                                  "",
		"/v.sock":                             "",
		"/v.sock:4294967295":                  "",
		"/v.sock:-1":                          "",
		"/" + strings.Repeat("p", 110) + ":1": "",
	} {
		a, err := hvsock.Transport{}.ParseAddr(in)
		if want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %v, want an error", in, a)
			}
			continue
		}
		if err != nil || a.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %q", in, a, err, want)
		}
	}
}
