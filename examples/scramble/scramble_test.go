package scramble_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"example.com/scramble"
	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/transporttest"
)

// The same conformance suite as the built-in transports, nettest included.
func TestConformance(t *testing.T) {
	transporttest.Run(t, transporttest.Config{
		Transport:    scramble.Transport{Key: "k"},
		Address:      func(*testing.T) string { return "127.0.0.1:0" },
		Unreachable:  "127.0.0.1:1",
		BadAddresses: []string{"", "x", "127.0.0.1:99999"},
	})
}

// waitFor polls cond until it holds, failing with what it waited for after
// a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
	}
}

// tap is a TCP proxy that records every byte on the wire.
type tap struct {
	l    net.Listener
	mu   sync.Mutex
	wire bytes.Buffer
}

func newTap(t *testing.T, to string) *tap {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			go tp.pipe(up, c)
			go tp.pipe(c, up)
		}
	}()
	return tp
}

func (tp *tap) pipe(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		tp.mu.Lock()
		tp.wire.Write(buf[:n])
		tp.mu.Unlock()
		if n > 0 {
			dst.Write(buf[:n])
		}
		if err != nil {
			dst.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// TestHubUsesReadAndWrite runs a hub on the scramble transport with clients
// on both codecs, through a tap: every message arrives byte-exact, and the
// wire never carries it in clear, so the hub went through the connection's
// Read and Write both ways.
func TestHubUsesReadAndWrite(t *testing.T) {
	tr := scramble.Transport{Key: "secret"}
	for _, codec := range []core.Codec{line.Codec{}, length.Codec{}} {
		t.Run(codec.Name(), func(t *testing.T) {
			l, err := tr.Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &core.Server{NameByIdentity: true}
			go srv.Serve(l, codec)
			t.Cleanup(func() { srv.Close() })
			tp := newTap(t, l.Addr().String())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			alice, err := core.Dial(ctx, scramble.Transport{Key: "secret", Peer: "alice"}, tp.l.Addr().String(), codec, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer alice.Close()
			bob, err := core.Dial(ctx, scramble.Transport{Key: "secret", Peer: "bob"}, tp.l.Addr().String(), codec, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer bob.Close()
			waitFor(t, "both clients in the room", func() bool { return len(srv.Peers()) == 2 })
			names := []string{srv.Peers()[0].Identity(), srv.Peers()[1].Identity()}
			if strings.Join(names, " ") != "name=alice name=bob" && strings.Join(names, " ") != "name=bob name=alice" {
				t.Fatalf("identities %v, want name=alice and name=bob from the handshake", names)
			}
			var msgs [][]byte
			for i := range 200 {
				m := []byte(fmt.Sprintf("plaintext-marker %d %s\r", i, strings.Repeat("é", i%40)))
				msgs = append(msgs, m)
				if err := alice.Queue(m); err != nil {
					t.Fatal(err)
				}
			}
			big := bytes.Repeat([]byte("plaintext-marker big "), 10000) // through the hub's vectored path
			msgs = append(msgs, big)
			alice.Queue(big)
			if err := alice.Flush(); err != nil {
				t.Fatal(err)
			}
			bob.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
			for i, want := range msgs {
				got, err := bob.Receive()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("message %d altered: got %q, want %q", i, got[:min(len(got), 40)], want[:min(len(want), 40)])
				}
			}
			tp.mu.Lock()
			defer tp.mu.Unlock()
			if bytes.Contains(tp.wire.Bytes(), []byte("plaintext-marker")) {
				t.Fatal("the wire carried a message in clear: something wrote beneath the connection's Write")
			}
		})
	}
}

// TestCommandLine builds a tether command with this transport registered and
// drives serve and connect as processes: the CLI, which does not know the
// transport's name, offers its flags, uses its default address and applies
// its admission rule, and carries both codecs byte-exact.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "scramble-tether")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/scramble-tether").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	def, second := free(), free()
	env := append(os.Environ(), "SCRAMBLE_ADDR="+def)

	help, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	for _, flag := range []string{"-scramble-key", "-scramble-allow", "(transport scramble)"} {
		if !strings.Contains(string(help), flag) {
			t.Fatalf("serve -h does not offer %s:\n%s", flag, help)
		}
	}

	hub := exec.Command(bin, "serve", "--transport", "scramble", "--scramble-key", "k1", "--scramble-allow", "alice,bob",
		"--names", "identity", "--listen", "scramble://"+second+"?codec=length")
	hub.Env = env
	var hubOut, hubErr syncBuffer
	hub.Stdout, hub.Stderr = &hubOut, &hubErr
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Process.Kill(); hub.Wait() })
	waitFor(t, "two listeners", func() bool { return strings.Count(hubErr.String(), "serving") == 2 })
	if !strings.Contains(hubErr.String(), "serving scramble://"+def+" (codec line)") {
		t.Fatalf("the hub did not use the transport's default address %s:\n%s", def, hubErr.String())
	}

	input := "hi\nhow are you\r\n\ttabs and ünïcödé ✓\n\n\x00\x01binary\xff\nok bye"
	want := "hi\nhow are you\r\n\ttabs and ünïcödé ✓\n\n\x00\x01binary\xff\nok bye\n"
	for _, tc := range []struct{ codec, addr string }{{"line", ""}, {"length", "scramble://" + second}} {
		args := func(name string, extra ...string) []string {
			a := []string{"connect", "--transport", "scramble", "--scramble-key", "k1", "--scramble-name", name, "--codec", tc.codec}
			if tc.addr != "" {
				a = []string{"connect", "--addr", tc.addr, "--scramble-key", "k1", "--scramble-name", name, "--codec", tc.codec}
			}
			return append(a, extra...)
		}
		before := strings.Count(hubOut.String(), "name=alice connected")
		recv := exec.Command(bin, args("alice", "--recv-only")...)
		recv.Env = env
		out, err := recv.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := recv.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "alice in the room", func() bool { return strings.Count(hubOut.String(), "name=alice connected") > before })
		send := exec.Command(bin, args("bob")...)
		send.Env = env
		send.Stdin = strings.NewReader(input)
		if b, err := send.CombinedOutput(); err != nil {
			t.Fatalf("%s: bob's connect: %v\n%s", tc.codec, err, b)
		}
		got := make([]byte, len(want))
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(bufio.NewReader(out), got); done <- err }()
		select {
		case err := <-done:
			if err != nil || string(got) != want {
				t.Fatalf("%s: alice got %q, %v; want %q", tc.codec, got, err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: alice did not get bob's messages within 10s", tc.codec)
		}
		recv.Process.Kill()
		recv.Wait()
	}

	// mallory is not on the list: refused by the transport's rule, and her
	// message goes nowhere.
	mal := exec.Command(bin, "connect", "--transport", "scramble", "--scramble-key", "k1", "--scramble-name", "mallory")
	mal.Env = env
	mal.Stdin = strings.NewReader("let me in\n")
	mal.Run()
	waitFor(t, "mallory's refusal", func() bool {
		return strings.Contains(hubErr.String(), `name \"mallory\" is not allowed (scramble-allow alice,bob)`)
	})
	if strings.Contains(hubOut.String(), "let me in") {
		t.Fatal("a refused peer's message was relayed")
	}

	// A flag of the transport given where it does not apply is refused.
	bad := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--scramble-allow", "x")
	bad.Env = env
	b, err := bad.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(b), "--scramble-allow is an option of transport scramble") {
		t.Fatalf("--scramble-allow on a tcp hub: %v\n%s", err, b)
	}
}

// syncBuffer is a goroutine-safe buffer for a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
