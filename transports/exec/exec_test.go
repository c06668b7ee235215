package exec_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/core/transporttest"
	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/exec"
)

// TestMain runs this test binary as the command the tests dial, when asked:
// "-connect-helper PATH" connects its standard streams to a unix socket,
// passing a half-close on both ways.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "-connect-helper" {
		c, err := net.Dial("unix", os.Args[2])
		if err != nil {
			os.Exit(3)
		}
		done := make(chan struct{})
		go func() {
			io.Copy(os.Stdout, c)
			os.Stdout.Close()
			close(done)
		}()
		io.Copy(c, os.Stdin)
		c.(*net.UnixConn).CloseWrite()
		<-done
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func shortDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "tx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// The whole conformance suite: each dialed connection is this binary run as
// a command that connects to the suite's listener, so every byte crosses
// the command's standard input and output.
func TestConformance(t *testing.T) {
	n := 0
	dir := shortDir(t)
	transporttest.Run(t, transporttest.Config{
		// The helper, like socat, waits for the far side to close after
		// its input ends; the suite closes the far side after the command
		// side, so each close waits out the grace.
		Transport: exec.Transport{ExitGrace: 300 * time.Millisecond},
		Address:   func(*testing.T) string { n++; return filepath.Join(dir, "s"+strings.Repeat("x", n)) },
		Listen: func(ctx context.Context, address string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, "unix", address)
		},
		DialAddress:  func(l net.Listener) string { return os.Args[0] + " -connect-helper " + l.Addr().String() },
		Unreachable:  "/nonexistent/command",
		BadAddresses: []string{"", "   ", "'unclosed"},
	})
}

func TestCommandLine(t *testing.T) {
	for in, want := range map[string][]string{
		"cat":                      {"cat"},
		`sh -c 'echo "hi there"'`:  {"sh", "-c", `echo "hi there"`},
		`printf '%s\n' a\ b "c d"`: {"printf", `%s\n`, "a b", "c d"},
	} {
		a, err := exec.Transport{}.ParseAddr(in)
		if err != nil {
			t.Fatalf("ParseAddr(%q): %v", in, err)
		}
		if got := a.(*exec.Addr).Args; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("ParseAddr(%q) = %q, want %q", in, got, want)
		}
		again, err := exec.Transport{}.ParseAddr(a.String())
		if err != nil || strings.Join(again.(*exec.Addr).Args, "|") != strings.Join(want, "|") {
			t.Errorf("%q does not read back: %v, %v", a.String(), again, err)
		}
	}
}

func TestListenRefused(t *testing.T) {
	_, err := exec.Transport{}.Listen(context.Background(), "cat")
	if err == nil || !strings.Contains(err.Error(), "bridge a listening endpoint to it") {
		t.Fatalf("Listen: %v, want a refusal saying what to do instead", err)
	}
}

// TestCommandLifetime: the command's output is read, its input written;
// closing its input lets it finish; its exit status is logged; a command
// that does not exit when the connection ends is killed.
func TestCommandLifetime(t *testing.T) {
	var logs bytes.Buffer
	ctx := core.WithLogger(context.Background(), hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	c, err := exec.Transport{}.Dial(ctx, "sh -c 'tr a-z A-Z; exit 7'")
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("shout\n"))
	c.(interface{ CloseWrite() error }).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "SHOUT\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.Close()
	if err := c.(*exec.Conn).ExitErr(); err == nil || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("exit: %v, want exit status 7", err)
	}
	if !strings.Contains(logs.String(), "command exited") || !strings.Contains(logs.String(), "exit status 7") {
		t.Fatalf("the exit was not logged: %s", logs.String())
	}

	// What was written before Close reaches the command whole.
	file := filepath.Join(shortDir(t), "got")
	c, err = exec.Transport{}.Dial(ctx, "sh -c 'cat > "+file+"'")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("written, then closed\n"), 50000)
	if n, err := c.Write(payload); err != nil || n != len(payload) {
		t.Fatalf("write: %d, %v", n, err)
	}
	c.Close()
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("the command got %d bytes (%v) of the %d written before Close", len(got), err, len(payload))
	}

	stubborn, err := exec.Transport{}.Dial(context.Background(), "sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stubborn.Close()
	if took := time.Since(start); took > 2*exec.DefaultExitGrace+5*time.Second {
		t.Fatalf("closing a command that ignores its input took %v", took)
	}
	if err := stubborn.(*exec.Conn).ExitErr(); err == nil || !strings.Contains(err.Error(), "signal") {
		t.Fatalf("the command that would not exit: %v, want it stopped by a signal", err)
	}
}

func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &exec.Conn{})
	zerotest.Calls(t, &exec.Addr{})
}

// TestExitGraceOption: exit-grace takes a positive duration and nothing
// else, and a stubborn command is stopped within it.
func TestExitGraceOption(t *testing.T) {
	for _, bad := range []string{"0", "-1s", "soon", "2h"} {
		if _, err := (exec.Transport{}).Configure(url.Values{"exit-grace": {bad}}); err == nil || !strings.Contains(err.Error(), "such as 500ms") {
			t.Errorf("exit-grace=%s: %v; want a refusal with an example", bad, err)
		}
	}
	tr, err := exec.Transport{}.Configure(url.Values{"exit-grace": {"50ms"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tr.Dial(context.Background(), "sleep 60")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Close()
	if took := time.Since(start); took >= exec.DefaultExitGrace {
		t.Errorf("Close with exit-grace=50ms took %v", took)
	}
	if err := c.(*exec.Conn).ExitErr(); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("the stubborn command: %v; want it stopped by SIGTERM", err)
	}
}
