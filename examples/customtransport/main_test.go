package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/core/transporttest"
)

func shortTemp(t *testing.T) string {
	dir, err := os.MkdirTemp("", "rooms")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// The custom transport gets the same guarantees as the built-in ones from
// the shared conformance suite: a few lines.
func TestConformance(t *testing.T) {
	n := 0
	transporttest.Run(t, transporttest.Config{
		Transport: Room{Dir: shortTemp(t)},
		Address:   func(*testing.T) string { n++; return fmt.Sprintf("room%d", n) },
		DialAddress: func(l net.Listener) string {
			return strings.TrimSuffix(filepath.Base(l.Addr().String()), ".sock")
		},
		BadAddresses: []string{"", "a/b", strings.Repeat("x", 33)},
	})
}

// TestCommandLine builds this program and chats through room://lobby with
// tether's own serve and connect.
func TestCommandLine(t *testing.T) {
	dir := shortTemp(t)
	bin := filepath.Join(dir, "customtransport")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "TETHER_ROOMS="+dir)
	serve := exec.Command(bin, "serve", "--addr", "room://lobby")
	serve.Env = env
	serveOut, _ := serve.StdoutPipe()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(serveOut)
		for sc.Scan() {
			events <- sc.Text()
		}
		close(events)
	}()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	sock := filepath.Join(dir, "lobby.sock")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the room never opened")
		}
	}
	recv := exec.Command(bin, "connect", "--addr", "room://lobby", "--recv-only")
	recv.Env = env
	recvOut, _ := recv.StdoutPipe()
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Process.Kill(); recv.Wait() })
	if ev := <-events; !strings.HasPrefix(ev, "#1 connected") {
		t.Fatalf("hub said %q, want the receiver's arrival", ev)
	}
	send := exec.Command(bin, "connect", "--addr", "room://lobby")
	send.Env = env
	send.Stdin = strings.NewReader("hello, lobby\n")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("connect: %v\n%s", err, out)
	}
	buf := make([]byte, 64)
	n, _ := recvOut.Read(buf)
	if got := string(buf[:n]); got != "hello, lobby\n" {
		t.Fatalf("receiver got %q", got)
	}
	out, err := exec.Command(bin, "connect", "--transport", "nope").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "room, tcp") {
		t.Fatalf("unknown transport error %q should list the custom transport", out)
	}
}
