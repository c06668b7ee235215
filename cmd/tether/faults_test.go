//go:build unix

package main_test

import (
	"bytes"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
)

// The fault suite drives real tether processes with hostile and failing
// peers and checks figures: memory, descriptors, and every message counted.
// It takes about a minute, so it runs only with TETHER_FAULTS=1 (as .ci/run
// does).
func faults(t *testing.T) {
	if os.Getenv("TETHER_FAULTS") == "" {
		t.Skip("fault suite: set TETHER_FAULTS=1 (bash .ci/run does)")
	}
}

// runHelper is a child process for faults that need one of their own: it
// connects and does one bad thing, then waits to be killed.
func runHelper(kind, addr string) {
	if kind == "idle" {
		n, _ := strconv.Atoi(os.Getenv("TETHER_FAULT_N"))
		var conns []net.Conn
		for range n {
			c, err := net.Dial("unix", addr)
			for tries := 0; errors.Is(err, syscall.EAGAIN) && tries < 1000; tries++ {
				time.Sleep(time.Millisecond) // the listen backlog is full: let the hub accept
				c, err = net.Dial("unix", addr)
			}
			if err != nil {
				fmt.Println("dial:", err)
				os.Exit(3)
			}
			conns = append(conns, c)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		runtime.KeepAlive(conns) // unreachable conns would be closed by their finalizers
		return
	}
	c, err := net.Dial("unix", addr)
	if err != nil {
		os.Exit(3)
	}
	switch kind {
	case "midframe":
		var head [4]byte
		binary.BigEndian.PutUint32(head[:], 1000)
		c.Write(head[:])
		c.Write(bytes.Repeat([]byte("m"), 10))
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
}

// rssKiB reads a process's resident set (VmRSS) or its peak (VmHWM) in KiB.
func rssKiB(t *testing.T, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func openFDs(t *testing.T, pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// talk runs a receiver and a stream of n lines from a sender through addr
// and checks every line arrived in order; it returns when done.
func talk(t *testing.T, addr, codec, tag string, n int) {
	t.Helper()
	recv := start(t, nil, "connect", "--addr", addr, "--codec", codec, "--recv-only")
	// Ping until the receiver is in the room, so no line goes out before.
	for i := 0; !strings.Contains(recv.Stdout.String(), tag+"-ping\n"); i++ {
		if i == 100 {
			t.Fatalf("%s: the receiver never joined", tag)
		}
		run(t, tag+"-ping\n", "connect", "--addr", addr, "--codec", codec)
		time.Sleep(20 * time.Millisecond)
	}
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "%s %d\n", tag, i)
	}
	if _, e, code := run(t, in.String(), "connect", "--addr", addr, "--codec", codec); code != 0 {
		t.Fatalf("%s sender: exit %d: %s", tag, code, e)
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(recv.Stdout.String(), "\n") {
			if strings.HasPrefix(l, tag+" ") {
				out = append(out, l)
			}
		}
		return out
	}
	proctest.WaitFor(t, tag+" lines", 60*time.Second, func() bool { return len(lines()) >= n })
	for i, l := range lines() {
		if l != fmt.Sprintf("%s %d", tag, i) {
			t.Fatalf("%s: line %d is %q", tag, i, l)
		}
	}
}

// TestFaultHostileInputs: 4 GiB length prefixes, endless lines, truncated
// frames and random bytes, 40 connections of each, while well-behaved
// clients talk on both codecs. Only the attackers are disconnected; the
// hub's memory stays bounded.
func TestFaultHostileInputs(t *testing.T) {
	faults(t)
	lsock, nsock := sockPath(t), sockPath(t)
	hub := start(t, nil, "serve", "--quiet", "--listen", "unix://"+lsock, "--listen", "unix://"+nsock+"?codec=length")
	waitFor(t, "the hub", func() bool { return strings.Count(hub.Stderr.String(), "serving") == 2 })
	pid := hub.Cmd.Process.Pid
	base := rssKiB(t, pid, "VmRSS")

	attacks := map[string]struct {
		sock string
		data func() []byte
	}{
		"4 GiB prefix":   {nsock, func() []byte { return []byte{0xff, 0xff, 0xff, 0xff, 'x'} }},
		"text on length": {nsock, func() []byte { return []byte("GET / HTTP/1.1\r\n") }},
		"endless line":   {lsock, func() []byte { return bytes.Repeat([]byte("A"), 3<<20) }},
		"truncated":      {nsock, func() []byte { return []byte{0, 0, 0, 200, 'a', 'b'} }},
		"random":         {nsock, func() []byte { b := make([]byte, 256<<10); crand.Read(b); return b }},
	}
	var wg sync.WaitGroup
	for name, a := range attacks {
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("unix", a.sock)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				c.Write(a.data())
				c.(*net.UnixConn).CloseWrite()
				io.Copy(io.Discard, c) // until the hub closes us
			}()
		}
	}
	talk(t, "unix://"+lsock, "line", "during-line", 2000)
	talk(t, "unix://"+nsock, "length", "during-length", 2000)
	wg.Wait()
	proctest.WaitFor(t, "every attacker removed", 20*time.Second, func() bool {
		return strings.Count(hub.Stdout.String(), "disconnected:") >= 200
	})
	peak := rssKiB(t, pid, "VmHWM")
	t.Logf("hub RSS: %d KiB at start, peak %d KiB during 200 hostile connections", base, peak)
	if raceEnabled {
		t.Log("race-detector build: its shadow memory makes the figure meaningless; not checked")
	} else if peak > 256<<10 {
		t.Fatalf("hub peaked at %d KiB under hostile input, want under 256 MiB", peak)
	}
	for _, want := range []string{"exceeds the limit of 1048576", "stream ended mid-frame", "--codec line?"} {
		if !strings.Contains(hub.Stdout.String(), want) {
			t.Errorf("no disconnect reason mentions %q", want)
		}
	}
}

// TestFaultKilledMidFrame: clients SIGKILLed halfway through a frame.
func TestFaultKilledMidFrame(t *testing.T) {
	faults(t)
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--codec", "length", "--quiet")
	var helpers []*exec.Cmd
	for range 20 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TETHER_FAULT_HELPER=midframe", "TETHER_FAULT_ADDR="+sock)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		io.ReadFull(out, buf)
		helpers = append(helpers, cmd)
	}
	waitFor(t, "helpers", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 20 })
	for _, h := range helpers {
		h.Process.Signal(syscall.SIGKILL)
		h.Wait()
	}
	waitFor(t, "every killed client removed", func() bool {
		return strings.Count(hub.Stdout.String(), "stream ended mid-frame after 14 of 1004 bytes") == 20
	})
	talk(t, "unix://"+sock, "length", "after-kills", 500)
}

// TestFaultChurn: 3000 connections opened and dropped (some after a message,
// some mid-frame); afterwards the hub holds no more descriptors than before.
func TestFaultChurn(t *testing.T) {
	faults(t)
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--quiet", "--codec", "length")
	pid := hub.Cmd.Process.Pid
	before := openFDs(t, pid)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range 3000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Errorf("connect %d: %v", i, err)
				return
			}
			switch i % 3 {
			case 1:
				c.Write([]byte{0, 0, 0, 2, 'h', 'i'})
			case 2:
				c.Write([]byte{0, 0, 0, 9, 'h'})
			}
			c.Close()
		}()
	}
	wg.Wait()
	proctest.WaitFor(t, "every connection gone", 30*time.Second, func() bool {
		out := hub.Stdout.String()
		return strings.Count(out, "connected (") == 3000 && strings.Count(out, " left\n")+strings.Count(out, "disconnected:") == 3000
	})
	proctest.WaitFor(t, "descriptors back to the baseline", 10*time.Second, func() bool { return openFDs(t, pid) <= before })
	if n := strings.Count(hub.Stdout.String(), "connected ("); n != 3000 {
		t.Fatalf("hub saw %d connections, want 3000", n)
	}
	talk(t, "unix://"+sock, "length", "after-churn", 500)
}

// TestFaultSlowAndSilentPeers: a peer that drips one byte every 100 ms and
// one that connects and says nothing (as a half-open connection looks) are
// both cut by the idle timeout, while others talk undisturbed.
func TestFaultSlowAndSilentPeers(t *testing.T) {
	faults(t)
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--idle-timeout", "1s", "--quiet")
	silent, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	drip, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer drip.Close()
	go func() {
		for range 30 {
			if _, err := drip.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	start := time.Now()
	talk(t, "unix://"+sock, "line", "meanwhile", 1000)
	waitFor(t, "both cut", func() bool { return strings.Count(hub.Stdout.String(), "idle timeout of 1s exceeded") >= 2 })
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v", took)
	}
}

// TestFaultHubRestartedUnderLoad: a sender with --reconnect streams lines;
// the hub is SIGKILLed and restarted on the same socket. Everything typed
// while the hub was away waits in the outbox and reaches the new hub, in
// order, once; only lines already handed to the dead connection may be
// missing, and the counts say how many.
func TestFaultHubRestartedUnderLoad(t *testing.T) {
	faults(t)
	sock := sockPath(t)
	hub1 := startHub(t, "--addr", sock)
	sender := start(t, nil, "connect", "--addr", sock, "--reconnect")
	const total = 3000
	var mu sync.Mutex
	phase := map[int]string{} // line -> "before", "down", "after"
	state := "before"
	var hub2 *proc
	go func() {
		for i := range total {
			mu.Lock()
			phase[i] = state
			mu.Unlock()
			fmt.Fprintf(sender.Stdin, "line %d\n", i)
			time.Sleep(time.Millisecond)
		}
		sender.Stdin.Close()
	}()
	waitFor(t, "load on the first hub", func() bool { return strings.Count(hub1.Stdout.String(), ": line ") > 500 })
	hub1.Cmd.Process.Signal(syscall.SIGKILL)
	hub1.Wait(t, 5*time.Second)
	mu.Lock()
	state = "down"
	mu.Unlock()
	time.Sleep(400 * time.Millisecond)
	mu.Lock()
	state = "after"
	mu.Unlock()
	hub2 = startHub(t, "--addr", sock) // replaces the dead hub's stale socket
	if code := sender.Wait(t, 60*time.Second); code != 0 {
		t.Fatalf("sender exit %d: %s", code, sender.Stderr)
	}
	got := map[int]int{}
	for _, h := range []*proc{hub1, hub2} {
		for _, l := range strings.Split(h.Stdout.String(), "\n") {
			if i := strings.Index(l, ": line "); i >= 0 {
				n, _ := strconv.Atoi(l[i+len(": line "):])
				got[n]++
			}
		}
	}
	lost, dup := 0, 0
	mu.Lock()
	defer mu.Unlock()
	for i := range total {
		switch {
		case got[i] == 0 && phase[i] == "before":
			lost++ // in flight when the hub died
		case got[i] == 0:
			t.Errorf("line %d, typed while the hub was %s, never arrived", i, phase[i])
		case got[i] > 1:
			dup++
		}
	}
	t.Logf("%d lines: %d lost in flight at the crash, %d duplicated; stderr:\n%s", total, lost, dup, sender.Stderr)
	if dup > 0 {
		t.Fatalf("%d lines arrived twice", dup)
	}
	if lost > 3 { // the README: "1 or 2 lines of 3000 ... the test allows at most 3"
		t.Fatalf("%d lines lost in flight at the crash, want at most 3", lost)
	}
	for _, want := range []string{"lost the hub", "connected to unix://" + sock} {
		if !strings.Contains(sender.Stderr.String(), want) {
			t.Errorf("sender's stderr lacks %q", want)
		}
	}
}

// TestFaultGracefulShutdownUnderLoad: SIGTERM while three senders stream to
// three receivers: every message the hub accepted (printed) reaches every
// receiver, in order, and they all exit 0.
func TestFaultGracefulShutdownUnderLoad(t *testing.T) {
	faults(t)
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock)
	var recvs []*proc
	for range 3 {
		recvs = append(recvs, start(t, nil, "connect", "--addr", sock, "--recv-only"))
	}
	waitFor(t, "receivers", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 3 })
	for s := range 3 {
		p := start(t, nil, "connect", "--addr", sock)
		go func() {
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(p.Stdin, "s%d %d\n", s, i); err != nil {
					return
				}
			}
		}()
	}
	waitFor(t, "load", func() bool { return strings.Count(hub.Stdout.String(), "\n") > 30000 })
	hub.Cmd.Process.Signal(syscall.SIGTERM)
	if code := hub.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("hub exit %d", code)
	}
	accepted := map[string][]string{}
	for _, l := range strings.Split(hub.Stdout.String(), "\n") {
		if _, msg, ok := strings.Cut(l, ": "); ok && strings.HasPrefix(msg, "s") {
			accepted[msg[:2]] = append(accepted[msg[:2]], msg)
		}
	}
	total := 0
	for _, v := range accepted {
		total += len(v)
	}
	for i, r := range recvs {
		if code := r.Wait(t, 20*time.Second); code != 0 {
			t.Fatalf("receiver %d exit %d", i, code)
		}
		got := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSuffix(r.Stdout.String(), "\n"), "\n") {
			if len(l) >= 2 {
				got[l[:2]] = append(got[l[:2]], l)
			}
		}
		for s, want := range accepted {
			if strings.Join(got[s], "\n") != strings.Join(want, "\n") {
				t.Fatalf("receiver %d: from %s got %d messages, the hub accepted %d", i, s, len(got[s]), len(want))
			}
		}
	}
	t.Logf("the hub accepted %d messages before SIGTERM; all 3 receivers got all of them", total)
}

// TestIdleMemory10k: 10,000 idle clients on one hub cost it at most 8 KiB
// each and 100 MiB in all (measured: 7.3-7.5 KiB and 76-79 MiB).
func TestIdleMemory10k(t *testing.T) {
	faults(t)
	const n = 10000
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--max-conns", "0", "--quiet")
	pid := hub.Cmd.Process.Pid
	time.Sleep(200 * time.Millisecond)
	before := rssKiB(t, pid, "VmRSS")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TETHER_FAULT_HELPER=idle", "TETHER_FAULT_ADDR="+sock, "TETHER_FAULT_N="+strconv.Itoa(n))
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 64)
	if k, _ := out.Read(buf); !strings.HasPrefix(string(buf[:k]), "ready") {
		t.Fatalf("helper: %q", buf[:k])
	}
	proctest.WaitFor(t, "every client in the room", 60*time.Second, func() bool {
		return strings.Count(hub.Stdout.String(), "connected (") == n
	})
	time.Sleep(500 * time.Millisecond)
	after := rssKiB(t, pid, "VmRSS")
	per := float64(after-before) * 1024 / n
	t.Logf("hub RSS %d KiB with no clients, %d KiB with %d idle clients: %.0f bytes per idle connection", before, after, n, per)
	if raceEnabled {
		t.Log("race-detector build: not checked")
		return
	}
	if per > 8<<10 {
		t.Errorf("%.0f bytes per idle connection, want at most 8 KiB", per)
	}
	if after > 100<<10 {
		t.Errorf("hub at %d KiB with %d idle clients, want under 100 MiB", after, n)
	}
}
