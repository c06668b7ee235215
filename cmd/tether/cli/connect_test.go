package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/unix"
)

// TestTerminalChat drives the interactive mode: a "->" prompt, messages from
// others shown as they come, and "bye" ending the chat.
func TestTerminalChat(t *testing.T) {
	for _, extra := range [][]string{nil, {"--reconnect"}} {
		t.Run(strings.Join(append([]string{"plain"}, extra...), ""), func(t *testing.T) { testTerminalChat(t, extra) })
	}
}

func testTerminalChat(t *testing.T, extra []string) {
	dir, _ := os.MkdirTemp("", "tc")
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	got := make(chan string, 8)
	srv := &core.Server{OnMessage: func(_ *core.Peer, m []byte) { got <- string(m) }}
	l, err := unix.Transport{}.Listen(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l, line.Codec{})
	t.Cleanup(func() { srv.Close() })

	in, typing := io.Pipe()
	out := &proctest.Buffer{}
	app := New()
	app.Stdin, app.Stdout, app.Stderr = in, out, io.Discard
	app.IsTerminal = func() bool { return true }
	code := make(chan int, 1)
	go func() { code <- app.Run(context.Background(), append([]string{"connect", "--addr", sock}, extra...)) }()

	testwait.For(t, "the client in the room", testwait.Timeout, func() bool { return len(srv.Peers()) == 1 })
	typing.Write([]byte("hi\n"))
	if m := testwait.Recv(t, "the first message at the hub", testwait.Timeout, got); m != "hi" {
		t.Fatalf("hub got %q, want hi", m)
	}
	srv.Broadcast([]byte("hello from the host"))
	testwait.For(t, "the host's message and a fresh prompt on the terminal", testwait.Timeout, func() bool {
		return strings.Contains(out.String(), "hello from the host\n->")
	})
	typing.Write([]byte("ok, bye!\n"))
	if m := testwait.Recv(t, "bye at the hub", testwait.Timeout, got); m != "ok, bye!" {
		t.Fatalf("hub got %q", m)
	}
	if c := testwait.Recv(t, "the chat to end after bye", testwait.Timeout, code); c != 0 {
		t.Fatalf("exit code %d after bye, want 0", c)
	}
	if !strings.HasPrefix(out.String(), "->") {
		t.Fatalf("terminal output %q does not start with the prompt", out.String())
	}
}

func TestSaysBye(t *testing.T) {
	for msg, want := range map[string]bool{"bye": true, "ok bye": true, "Bye!": true, "goodbye": false, "byebye": false, "": false} {
		if got := saysBye(msg); got != want {
			t.Errorf("saysBye(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestLineReader(t *testing.T) {
	lr := newLineReader(strings.NewReader("a\r\n\nlong line here\nlast"), 10)
	var got []string
	var errs []error
	for {
		l, err := lr.next()
		if l != nil {
			got = append(got, string(l))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(got) != 2 || got[0] != "a\r" || got[1] != "" {
		t.Fatalf("lines %q, want [a\\r, \"\"] before the long line", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "line 3") {
		t.Fatalf("errors %v, want one naming input line 3", errs)
	}
}

func TestPrintable(t *testing.T) {
	for msg, want := range map[string]bool{
		"": true, "hello": true, "tabs\tare fine": true, "a long line of plain text, more than eight bytes": true,
		"héllo ✓ unicode": true, "0123456789abcdef\x7f": false, "0123456789abcdef\x00": false, "\r": false,
		"0123456789abcdef\n0123": false, "valid then \xff invalid": false, "\x1b[31mred": false, "seventeen bytes!!": true,
		strings.Repeat("x", 100): true, strings.Repeat("x", 100) + "\x7f": false, strings.Repeat("x", 33) + "\x00" + strings.Repeat("y", 40): false,
		strings.Repeat("é", 40): true, strings.Repeat("\t", 40): true, strings.Repeat("ab", 20) + "\xc3": false,
	} {
		if got := printable([]byte(msg)); got != want {
			t.Errorf("printable(%q) = %v, want %v", msg, got, want)
		}
	}
}

func BenchmarkPrintable(b *testing.B) {
	msg := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog ", 1500))
	b.SetBytes(int64(len(msg)))
	for range b.N {
		if !printable(msg) {
			b.Fatal("not printable")
		}
	}
}
