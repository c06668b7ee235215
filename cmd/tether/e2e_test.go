//go:build unix

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/internal/tlstest"
)

// bin is the tether binary built once for the end-to-end tests.
var bin string

func TestMain(m *testing.M) {
	if mode := os.Getenv("TETHER_HAND"); mode != "" {
		handMain(mode)
	}
	if helper := os.Getenv("TETHER_FAULT_HELPER"); helper != "" {
		runHelper(helper, os.Getenv("TETHER_FAULT_ADDR"))
		return
	}
	dir, err := os.MkdirTemp("", "tether-e2e")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "tether")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The children run with the race detector too; a race exits 66. Skip
		// its one-second pause at exit.
		args = append(args, "-race")
		os.Setenv("GORACE", "atexit_sleep_ms=0 exitcode=66")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building tether: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc = proctest.Proc

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return proctest.Start(t, bin, env, args...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	proctest.WaitFor(t, what, 10*time.Second, cond)
}

func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return proctest.Run(t, bin, stdin, args...)
}

func sockPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "te")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "hub.sock")
}

func startHub(t *testing.T, args ...string) *proc {
	t.Helper()
	hub := start(t, nil, append([]string{"serve"}, args...)...)
	waitFor(t, "the hub to serve", func() bool { return strings.Contains(hub.Stderr.String(), "serving") })
	return hub
}

func TestPipeSessionByteExact(t *testing.T) {
	for _, codec := range []string{"line", "length"} {
		t.Run(codec, func(t *testing.T) {
			sock := sockPath(t)
			hub := startHub(t, "--addr", sock, "--codec", codec)
			recv := start(t, nil, "connect", "--addr", sock, "--codec", codec, "--recv-only")
			waitFor(t, "the receiver to join", func() bool { return strings.Contains(hub.Stdout.String(), "#1 connected") })
			input := "hi\nhow are you\r\n\ttabs and ünïcödé ✓\n\n\x00\x01binary\xff\nok bye"
			_, errOut, code := run(t, input, "connect", "--addr", sock, "--codec", codec)
			if code != 0 {
				t.Fatalf("pipe client exit %d: %s", code, errOut)
			}
			want := "hi\nhow are you\r\n\ttabs and ünïcödé ✓\n\n\x00\x01binary\xff\nok bye\n"
			waitFor(t, "every message", func() bool { return len(recv.Stdout.String()) >= len(want) })
			if got := recv.Stdout.String(); got != want {
				t.Fatalf("receiver got %q, want %q", got, want)
			}
			waitFor(t, "the sender to leave", func() bool { return strings.Contains(hub.Stdout.String(), "#2 left") })
			log := hub.Stdout.String()
			for _, line := range []string{"#2 connected (unix pid=", "#2: hi\n", "#2: \"how are you\\r\"\n", "#2: ok bye\n", "#2 left\n"} {
				if !strings.Contains(log, line) {
					t.Errorf("hub output lacks %q:\n%s", line, log)
				}
			}
		})
	}
}

// TestManyPipesOverTCP runs several pipe senders and two receivers on every
// codec over TCP and counts every line.
func TestManyPipesOverTCP(t *testing.T) {
	for _, codec := range []string{"line", "length"} {
		t.Run(codec, func(t *testing.T) {
			hub := startHub(t, "--addr", "127.0.0.1:0", "--codec", codec, "--quiet")
			addr := servedAddr(t, hub)
			r1 := start(t, nil, "connect", "--addr", addr, "--codec", codec, "--recv-only")
			r2 := start(t, nil, "connect", "--addr", "tcp://"+addr, "--codec", codec, "--recv-only")
			waitFor(t, "receivers", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 2 })
			const senders, lines = 4, 3000
			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var in strings.Builder
					for i := range lines {
						fmt.Fprintf(&in, "sender%d line%d %s\n", s, i, strings.Repeat("=", i%50))
					}
					if _, e, code := run(t, in.String(), "connect", "--addr", addr, "--codec", codec); code != 0 {
						t.Errorf("sender %d exit %d: %s", s, code, e)
					}
				}()
			}
			wg.Wait()
			for _, r := range []*proc{r1, r2} {
				waitFor(t, "all lines", func() bool { return strings.Count(r.Stdout.String(), "\n") >= senders*lines })
				next := map[string]int{}
				for _, l := range strings.Split(strings.TrimSuffix(r.Stdout.String(), "\n"), "\n") {
					var s, i int
					if _, err := fmt.Sscanf(l, "sender%d line%d", &s, &i); err != nil {
						t.Fatalf("unexpected line %q", l)
					}
					key := fmt.Sprint(s)
					if i != next[key] || l != fmt.Sprintf("sender%d line%d %s", s, i, strings.Repeat("=", i%50)) {
						t.Fatalf("sender %d: got %q, want line %d", s, l, next[key])
					}
					next[key]++
				}
				if len(next) != senders {
					t.Fatalf("lines from %d senders, want %d", len(next), senders)
				}
			}
		})
	}
}

func servedAddr(t *testing.T, hub *proc) string {
	t.Helper()
	line := hub.Stderr.String()
	i := strings.Index(line, "tcp://")
	if i < 0 {
		t.Fatalf("no tcp address in %q", line)
	}
	return strings.Fields(line[i+len("tcp://"):])[0]
}

func TestErrorsTellWhatToDo(t *testing.T) {
	sock := sockPath(t)
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"unknown transport", []string{"serve", "--transport", "udp"}, 2, []string{`unknown transport "udp"`, "exec, hvsock, stdio, systemd, tcp, tls, unix, vsock"}},
		{"unknown codec", []string{"connect", "--codec", "json"}, 2, []string{`unknown codec "json"`, "length, line"}},
		{"unknown scheme", []string{"connect", "--addr", "carrier-pigeon://x"}, 2, []string{"exec, hvsock, stdio, systemd, tcp, tls, unix, vsock"}},
		{"nobody listening", []string{"connect", "--addr", "127.0.0.1:1"}, 1, []string{"refused", "tether serve"}},
		{"no socket file", []string{"connect", "--addr", sock}, 1, []string{"no socket at", "tether serve"}},
		{"path too long", []string{"serve", "--addr", "/tmp/" + strings.Repeat("x", 110)}, 2, []string{"limit of 107"}},
		{"bad port", []string{"serve", "--addr", "tcp://127.0.0.1:99999"}, 2, []string{"0 to 65535"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{"serve, connect"}},
		{"bad max frame", []string{"serve", "--max-frame", "lots"}, 2, []string{"4MiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}

func TestLiveSocketNeverTakenOver(t *testing.T) {
	sock := sockPath(t)
	startHub(t, "--addr", sock)
	_, errOut, code := run(t, "", "serve", "--addr", sock)
	if code != 1 || !strings.Contains(errOut, "already listening") {
		t.Fatalf("second serve: exit %d, stderr %q; want 1 and 'already listening'", code, errOut)
	}
	_, errOut, code = run(t, "still works\n", "connect", "--addr", sock)
	if code != 0 {
		t.Fatalf("the first hub stopped working: %s", errOut)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	sock := sockPath(t)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	hub := startHub(t, "--addr", sock)
	_ = hub
	if _, e, code := run(t, "hello\n", "connect", "--addr", sock); code != 0 {
		t.Fatalf("connect after stale replace: %s", e)
	}
}

func TestSignalShutdownRemovesSocket(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock)
	recv := start(t, nil, "connect", "--addr", sock, "--recv-only")
	waitFor(t, "receiver", func() bool { return strings.Contains(hub.Stdout.String(), "connected") })
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, %v; want mode 0600", fi, err)
	}
	hub.Cmd.Process.Signal(syscall.SIGTERM)
	if code := hub.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("hub exit %d after SIGTERM, want 0", code)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file still there after shutdown: %v", err)
	}
	if code := recv.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("client exit %d when the hub shut down, want 0", code)
	}
}

func TestDefaultSocketNeedsNoSetup(t *testing.T) {
	tmp, err := os.MkdirTemp("", "tdef")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	env := []string{"TMPDIR=" + tmp, "XDG_RUNTIME_DIR="}
	hub := start(t, env, "serve")
	waitFor(t, "serving", func() bool { return strings.Contains(hub.Stderr.String(), "serving") })
	want := filepath.Join(tmp, fmt.Sprintf("tether-%d", os.Getuid()), "tether.sock")
	if !strings.Contains(hub.Stderr.String(), "unix://"+want) {
		t.Fatalf("serve says %q, want it to name %s", hub.Stderr.String(), want)
	}
	dir, _ := os.Stat(filepath.Dir(want))
	if dir.Mode().Perm() != 0o700 {
		t.Fatalf("socket directory mode %o, want 700", dir.Mode().Perm())
	}
	c := exec.Command(bin, "connect")
	c.Env = append(os.Environ(), env...)
	c.Stdin = strings.NewReader("hi from the default\n")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("connect with no flags: %v: %s", err, out)
	}
	waitFor(t, "the message", func() bool { return strings.Contains(hub.Stdout.String(), "#1: hi from the default") })
}

func TestHostilePeerOnLengthCodec(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--codec", "length")
	recv := start(t, nil, "connect", "--addr", sock, "--codec", "length", "--recv-only")
	waitFor(t, "receiver", func() bool { return strings.Contains(hub.Stdout.String(), "#1 connected") })
	// A peer that speaks lines to a length hub.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello there\n"))
	waitFor(t, "the hostile peer's removal", func() bool { return strings.Contains(hub.Stdout.String(), "#2 disconnected") })
	c.Close()
	out := hub.Stdout.String() + hub.Stderr.String()
	for _, w := range []string{"exceeds the limit of 1048576", "is the peer using --codec line?"} {
		if !strings.Contains(out, w) {
			t.Errorf("hub output lacks %q:\n%s", w, out)
		}
	}
	if _, e, code := run(t, "unharmed\n", "connect", "--addr", sock, "--codec", "length"); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "the next message", func() bool { return recv.Stdout.String() == "unharmed\n" })
}

func TestHostTypesToEveryone(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--chat")
	a := start(t, nil, "connect", "--addr", sock, "--recv-only")
	b := start(t, nil, "connect", "--addr", sock, "--recv-only")
	waitFor(t, "clients", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 2 })
	fmt.Fprintln(hub.Stdin, "welcome, both")
	for _, p := range []*proc{a, b} {
		waitFor(t, "the host's line", func() bool { return p.Stdout.String() == "host: welcome, both\n" })
	}
}

// TestMultipleListenersOneRoom serves unix/line and tcp/length at once.
func TestMultipleListenersOneRoom(t *testing.T) {
	sock := sockPath(t)
	hub := start(t, nil, "serve", "--listen", "unix://"+sock, "--listen", "tcp://127.0.0.1:0?codec=length")
	waitFor(t, "two listeners", func() bool { return strings.Count(hub.Stderr.String(), "serving") == 2 })
	addr := servedAddr(t, hub)
	recv := start(t, nil, "connect", "--addr", addr, "--codec", "length", "--recv-only")
	waitFor(t, "receiver", func() bool { return strings.Contains(hub.Stdout.String(), "connected") })
	if _, e, code := run(t, "across transports\n", "connect", "--addr", sock); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "the message", func() bool { return recv.Stdout.String() == "across transports\n" })
}

// TestPipeOutputIsPrompt checks that a pipe reader sees each message as it
// arrives, not when a buffer fills.
func TestPipeOutputIsPrompt(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock)
	recv := exec.Command(bin, "connect", "--addr", sock, "--recv-only")
	out, _ := recv.StdoutPipe()
	recv.Start()
	t.Cleanup(func() { recv.Process.Kill(); recv.Wait() })
	waitFor(t, "receiver", func() bool { return strings.Contains(hub.Stdout.String(), "connected") })
	sender := start(t, nil, "connect", "--addr", sock, "--pipe")
	br := bufio.NewReader(out)
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		fmt.Fprintln(sender.Stdin, msg)
		got := make(chan string, 1)
		go func() { l, _ := br.ReadString('\n'); got <- l }()
		select {
		case l := <-got:
			if l != msg+"\n" {
				t.Fatalf("got %q, want %q", l, msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d did not come through while the sender kept its input open", i)
		}
	}
}

func TestDoctor(t *testing.T) {
	dir := sockPath(t)
	dir = filepath.Dir(dir)
	for _, p := range []string{"v.sock", "v.sock_5000", "v.sock_6000"} {
		l, err := net.Listen("unix", filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
	}
	out, errOut, code := run(t, "", "doctor", "--hvsock-dir", dir)
	if code != 0 {
		t.Fatalf("doctor exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"nothing is dialed",
		"path limit:        107 bytes",
		"hvsock://" + filepath.Join(dir, "v.sock") + ":PORT; listeners for guest connections on ports 5000, 6000",
		"vsock\n  device:",
		"transports: exec, hvsock, stdio, systemd, tcp, tls, unix, vsock (default unix)",
		"systemd\n  passed sockets:  none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

func TestTLSWithClientCertificates(t *testing.T) {
	pki := tlstest.New(t)
	cert, key := pki.Issue(t, "hub", true)
	ccert, ckey := pki.Issue(t, "alice", false)
	hub := startHub(t, "--addr", "tls://127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--tls-ca", pki.CA,
		"--tls-client-auth", "--names", "identity", "--log-level", "info")
	addr := strings.Fields(hub.Stderr.String()[strings.Index(hub.Stderr.String(), "tls://")+len("tls://"):])[0]
	recv := start(t, nil, "connect", "--addr", "tls://"+addr, "--tls-ca", pki.CA, "--tls-cert", ccert, "--tls-key", ckey, "--recv-only")
	waitFor(t, "the receiver", func() bool { return strings.Contains(hub.Stdout.String(), "cn=alice connected") })
	if _, e, code := run(t, "over tls\n", "connect", "--addr", "tls://"+addr, "--tls-ca", pki.CA, "--tls-cert", ccert, "--tls-key", ckey); code != 0 {
		t.Fatalf("tls client: %s", e)
	}
	waitFor(t, "the message", func() bool { return recv.Stdout.String() == "over tls\n" })
	// Without a client certificate: refused, and the hub says why.
	run(t, "no cert\n", "connect", "--addr", "tls://"+addr, "--tls-ca", pki.CA)
	waitFor(t, "the refusal", func() bool { return strings.Contains(hub.Stderr.String(), "refused") })
	if strings.Contains(recv.Stdout.String(), "no cert") {
		t.Fatal("a client without a certificate got a message through")
	}
	// No warning about plain text for TLS on loopback either way.
	if strings.Contains(hub.Stderr.String(), "without encryption") {
		t.Fatal("warned about encryption on a TLS listener")
	}
}

func TestAccessControlAndLimits(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--allow-uid", "4242")
	_, refusedErr, _ := run(t, "let me in\n", "connect", "--addr", sock)
	if !strings.Contains(refusedErr, "it may have refused this client") || !strings.Contains(refusedErr, "the hub's log says why") {
		t.Errorf("a refused client's stderr %q should say it may have been refused and where to look", refusedErr)
	}
	waitFor(t, "the refusal", func() bool { return strings.Contains(hub.Stderr.String(), "refused") })
	if !strings.Contains(hub.Stderr.String(), fmt.Sprintf("uid %d / gid %d is not allowed (allow-uid 4242", os.Getuid(), os.Getgid())) {
		t.Fatalf("refusal should name the uid and the rule:\n%s", hub.Stderr)
	}
	if strings.Contains(hub.Stdout.String(), "let me in") {
		t.Fatal("a refused peer's message was relayed")
	}

	sock2 := sockPath(t)
	hub2 := startHub(t, "--addr", sock2, "--max-conns", "2", "--idle-timeout", "300ms")
	a := start(t, nil, "connect", "--addr", sock2, "--recv-only")
	b := start(t, nil, "connect", "--addr", sock2, "--recv-only")
	_, _ = a, b
	waitFor(t, "two clients", func() bool { return strings.Count(hub2.Stdout.String(), "connected") == 2 })
	run(t, "third\n", "connect", "--addr", sock2)
	waitFor(t, "the limit", func() bool { return strings.Contains(hub2.Stderr.String(), "too many peers") })
	if !strings.Contains(hub2.Stderr.String(), "the limit of 2 is reached") {
		t.Fatalf("the refusal should name the limit:\n%s", hub2.Stderr)
	}
	// The two silent clients are idle past 300 ms: disconnected, with the figure.
	waitFor(t, "idle disconnects", func() bool { return strings.Count(hub2.Stdout.String(), "idle timeout of 300ms exceeded") == 2 })
}

func TestBenchReports(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--duration", "300ms", "--json"},
		{"bench", "--transport", "tcp", "--codec", "length", "--size", "1024", "--clients", "3", "--duration", "300ms", "--json"},
	} {
		out, errOut, code := run(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		var report struct {
			Results []struct {
				Test           string
				Messages       int64
				MsgsPerSec     float64 `json:"msgs_per_sec"`
				DeliveriesPerS float64 `json:"deliveries_per_sec"`
				P99            float64 `json:"p99_us"`
			}
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
		}
		if len(report.Results) != 3 || report.Results[0].MsgsPerSec <= 0 || report.Results[1].P99 <= 0 || report.Results[2].DeliveriesPerS <= 0 {
			t.Fatalf("%v: incomplete figures: %+v", args, report.Results)
		}
	}
	_, errOut, code := run(t, "", "bench", "--transport", "vsock")
	if code != 2 || !strings.Contains(errOut, "give --addr") {
		t.Fatalf("bench on vsock without --addr: exit %d, %q; want a refusal asking for --addr", code, errOut)
	}
}

// TestHybridVsockThroughTheCLI plays a Firecracker VMM: connect dials a
// guest port through it (the guest's greeting arrives in the same write as
// the acknowledgement), and serve listens for guest connections on PATH_PORT.
func TestHybridVsockThroughTheCLI(t *testing.T) {
	dir := filepath.Dir(sockPath(t))
	vmm := filepath.Join(dir, "v.sock")
	l, err := net.Listen("unix", vmm)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if line, _ := br.ReadString('\n'); line != "CONNECT 6000\n" {
			t.Errorf("the VMM got %q, want CONNECT 6000", line)
			return
		}
		c.Write([]byte("OK 1073741824\nhello from the guest\n"))
		rest, _ := io.ReadAll(br) // the guest echoes what the host sent, then closes
		c.Write(rest)
	}()
	out, errOut, code := run(t, "ping\n", "connect", "--addr", "hvsock://"+vmm+":6000")
	if code != 0 || out != "hello from the guest\nping\n" {
		t.Fatalf("connect through the VMM: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	hub := startHub(t, "--addr", "hvsock://"+vmm+":5000")
	if !strings.Contains(hub.Stderr.String(), "serving hvsock://"+vmm+":5000") {
		t.Fatalf("serve says %q", hub.Stderr)
	}
	guest, err := net.Dial("unix", vmm+"_5000") // what the VMM does when the guest dials host:5000
	if err != nil {
		t.Fatalf("the hub does not listen on PATH_5000: %v", err)
	}
	defer guest.Close()
	guest.Write([]byte("hi from the guest\n"))
	waitFor(t, "the guest's message", func() bool { return strings.Contains(hub.Stdout.String(), "#1: hi from the guest") })
}

// TestSocketModeAndGroup widens the socket for a group through the CLI, and
// refuses the flags where there is no file.
func TestSocketModeAndGroup(t *testing.T) {
	sock := sockPath(t)
	gid := os.Getgid()
	startHub(t, "--addr", sock, "--socket-mode", "0660", "--socket-group", strconv.Itoa(gid))
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Fatalf("socket mode %o gid %d, want 660 and %d", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, gid)
	}
	if _, e, code := run(t, "shared\n", "connect", "--addr", sock); code != 0 {
		t.Fatalf("connect to the widened socket: %s", e)
	}
	_, errOut, code := run(t, "", "serve", "--addr", "tcp://127.0.0.1:0", "--socket-mode", "0660")
	if code != 2 || !strings.Contains(errOut, "--socket-mode is an option of transports hvsock, unix, and this command uses tcp") {
		t.Fatalf("--socket-mode on tcp: exit %d, %q; want a usage error", code, errOut)
	}
}

// TestAllowNet refuses a TCP peer outside the allowed ranges and admits one
// inside them.
func TestAllowNet(t *testing.T) {
	hub := startHub(t, "--addr", "127.0.0.1:0", "--allow-net", "10.0.0.0/8")
	addr := servedAddr(t, hub)
	run(t, "from loopback\n", "connect", "--addr", addr)
	waitFor(t, "the refusal", func() bool {
		return strings.Contains(hub.Stderr.String(), "address 127.0.0.1 is not allowed (allow-net 10.0.0.0/8)")
	})
	if strings.Contains(hub.Stdout.String(), "from loopback") {
		t.Fatal("a refused peer's message was relayed")
	}
	hub2 := startHub(t, "--addr", "127.0.0.1:0", "--allow-net", "127.0.0.0/8,::1")
	if _, e, code := run(t, "welcome\n", "connect", "--addr", servedAddr(t, hub2)); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "the admitted message", func() bool { return strings.Contains(hub2.Stdout.String(), "#1: welcome") })
}

// TestSlowStdoutSlowsTheRoom: when serve's standard output is slower than
// the room, the room slows to its pace: the hub holds a bounded amount of
// output, a receiver stops getting messages while the output is stuck, and
// once the output moves every line is printed, in order, none lost.
func TestSlowStdoutSlowsTheRoom(t *testing.T) {
	sock := sockPath(t)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	hub := exec.Command(bin, "serve", "--addr", sock)
	hub.Stdout = outW
	var hubErr proctest.Buffer
	hub.Stderr = &hubErr
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	t.Cleanup(func() { hub.Process.Kill(); hub.Wait(); outR.Close() })
	waitFor(t, "the hub to serve", func() bool { return strings.Contains(hubErr.String(), "serving") })
	recv := start(t, nil, "connect", "--addr", sock, "--recv-only")
	// The hub's first line ("#1 connected") is in the pipe; nobody reads it yet.
	const n, size = 40000, 200 // 8 MB of output: far more than the pipe and the printer hold
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "%06d %s\n", i, strings.Repeat("s", size-8))
	}
	send := start(t, nil, "connect", "--addr", sock)
	go func() { io.WriteString(send.Stdin, in.String()); send.Stdin.Close() }()
	// Stuck output: the receiver's count stops short of n, and stays there.
	var stuck int
	waitFor(t, "the room to stop while the hub's output is stuck", func() bool {
		before := proctest.CountLines(recv.Stdout.String())
		time.Sleep(300 * time.Millisecond) // a window in which nothing must move
		after := proctest.CountLines(recv.Stdout.String())
		stuck = after
		return after == before && after < n
	})
	t.Logf("with the hub's output stuck, the receiver got %d of %d messages", stuck, n)
	// The output moves again: every message printed, in order, and received.
	br := bufio.NewReader(outR)
	next := 0
	done := make(chan error, 1)
	go func() {
		for next < n {
			line, err := br.ReadString('\n')
			if err != nil {
				done <- err
				return
			}
			_, text, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
			if !ok {
				continue // connected / left
			}
			if want := fmt.Sprintf("%06d ", next); !strings.HasPrefix(text, want) {
				done <- fmt.Errorf("printed line %q, want message %d next", line, next)
				return
			}
			next++
		}
		done <- nil
	}()
	if err := testwait.Recv(t, "every message printed", 60*time.Second, done); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message at the receiver", func() bool { return proctest.CountLines(recv.Stdout.String()) == n })
}

// unixEcho serves an echo with half-close on a fresh socket.
func unixEcho(t *testing.T) string {
	t.Helper()
	sock := sockPath(t)
	proctest.EchoUnix(t, sock)
	return sock
}

// TestBridgeCommand: tether bridge between unix sockets, bytes both ways
// and a half-close passed on; the log says who connected, then the bytes
// each way; a command per connection with exec://; messages reframed.
func TestBridgeCommand(t *testing.T) {
	target := unixEcho(t)
	front := sockPath(t)
	br := start(t, nil, "bridge", "unix://"+front, "unix://"+target)
	waitFor(t, "the bridge to listen", func() bool { return strings.Contains(br.Stderr.String(), "bridging") })
	c, err := net.Dial("unix", front)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("through the bridge and back\n", 40000)
	go func() { io.WriteString(c, payload); c.(*net.UnixConn).CloseWrite() }()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != payload {
		t.Fatalf("echo through tether bridge: %d bytes, %v; want %d", len(got), err, len(payload))
	}
	waitFor(t, "the connection's end in the log", func() bool { return strings.Contains(br.Stderr.String(), "closed") })
	logs := br.Stderr.String()
	for _, want := range []string{"opened", fmt.Sprintf("uid=%d,pid=", os.Getuid()), fmt.Sprintf("bytes_in=%d", len(payload)), fmt.Sprintf("bytes_out=%d", len(payload))} {
		if !strings.Contains(logs, want) {
			t.Errorf("the bridge's log lacks %q:\n%s", want, logs)
		}
	}

	// inetd-style: one command per connection.
	cmdSock := sockPath(t)
	ex := start(t, nil, "bridge", "unix://"+cmdSock, "exec://tr a-z A-Z")
	waitFor(t, "the exec bridge to listen", func() bool { return strings.Contains(ex.Stderr.String(), "bridging") })
	for range 2 {
		c, err := net.Dial("unix", cmdSock)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "quiet words\n")
		c.(*net.UnixConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "QUIET WORDS\n" {
			t.Fatalf("through exec://tr: %q, %v", got, err)
		}
	}
	waitFor(t, "the commands' exits in the log", func() bool { return strings.Count(ex.Stderr.String(), "command exited") == 2 })

	// Messages: line clients on one side, a length hub on the other.
	hubSock := sockPath(t)
	hub := startHub(t, "--addr", hubSock, "--codec", "length")
	recv := start(t, nil, "connect", "--addr", hubSock, "--codec", "length", "--recv-only")
	waitFor(t, "the receiver", func() bool { return strings.Contains(hub.Stdout.String(), "#1 connected") })
	lineSock := sockPath(t)
	mb := start(t, nil, "bridge", "--from-codec", "line", "--to-codec", "length", "unix://"+lineSock, "unix://"+hubSock)
	waitFor(t, "the message bridge to listen", func() bool { return strings.Contains(mb.Stderr.String(), "bridging") })
	if _, e, code := run(t, "one\ntwo\r\n", "connect", "--addr", lineSock); code != 0 {
		t.Fatalf("a line client through the bridge: exit %d: %s", code, e)
	}
	waitFor(t, "the messages at the length receiver", func() bool { return recv.Stdout.String() == "one\ntwo\r\n" })
}

// TestBridgeStdio: "tether bridge stdio:// TO" is one connection over its
// own standard streams, the way ssh's ProxyCommand uses it; it ends when
// that connection does.
func TestBridgeStdio(t *testing.T) {
	target := unixEcho(t)
	out, errOut, code := run(t, "over standard streams\n", "bridge", "--log-level", "warn", "stdio://", "unix://"+target)
	if code != 0 || out != "over standard streams\n" {
		t.Fatalf("bridge stdio://: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = run(t, "", "bridge", "exec://cat", "unix://"+target)
	if code == 0 || !strings.Contains(errOut, "cannot listen") {
		t.Fatalf("bridge from exec://: exit %d, %q; want a refusal that says why", code, errOut)
	}
	_, errOut, code = run(t, "", "bridge", "stdio://")
	if code != 2 || !strings.Contains(errOut, "two endpoints") {
		t.Fatalf("bridge with one endpoint: exit %d, %q", code, errOut)
	}
}

// TestRoomsInOneHub: a listener with ?room= is a room of its own; messages
// never cross; with more than one room every output line names its room;
// lines typed into serve go to --room.
func TestRoomsInOneHub(t *testing.T) {
	lobby, vms := sockPath(t), sockPath(t)
	hub := startHub(t, "--addr", lobby, "--listen", "unix://"+vms+"?room=vms&codec=length")
	waitFor(t, "the serving line that names the room", func() bool { return strings.Contains(hub.Stderr.String(), "(codec length, room vms)") })
	l1 := start(t, nil, "connect", "--addr", lobby, "--recv-only")
	waitFor(t, "the lobby's receiver", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 1 })
	v1 := start(t, nil, "connect", "--addr", vms, "--codec", "length", "--recv-only")
	waitFor(t, "both receivers", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 2 })
	if _, e, code := run(t, "in the lobby\n", "connect", "--addr", lobby); code != 0 {
		t.Fatal(e)
	}
	if _, e, code := run(t, "among vms\n", "connect", "--addr", vms, "--codec", "length"); code != 0 {
		t.Fatal(e)
	}
	io.WriteString(hub.Stdin, "from the host\n")
	waitFor(t, "each room's messages", func() bool {
		return l1.Stdout.String() == "in the lobby\nfrom the host\n" && v1.Stdout.String() == "among vms\n"
	})
	out := hub.Stdout.String()
	for _, want := range []string{"[main] #1 connected (unix", "[vms] #2 connected (unix", "[main] #3: in the lobby", "[vms] #4: among vms"} {
		if !strings.Contains(out, want) {
			t.Errorf("the hub's output lacks %q:\n%s", want, out)
		}
	}
}

// TestFederatedHubs: one hub embeds NATS, another federates to it; a
// client on each talks to the other through both hubs, on different
// codecs; each hub prints the other's messages as HUB/NAME.
func TestFederatedHubs(t *testing.T) {
	east, west := sockPath(t), sockPath(t)
	a := startHub(t, "--addr", east, "--nats-listen", "127.0.0.1:0", "--hub-name", "east")
	var natsURL string
	waitFor(t, "the embedded NATS server's address", func() bool {
		_, rest, ok := strings.Cut(a.Stderr.String(), "NATS for other hubs at ")
		natsURL, _, _ = strings.Cut(rest, " ")
		return ok && strings.HasPrefix(natsURL, "nats://")
	})
	b := startHub(t, "--addr", west, "--codec", "length", "--federate", natsURL, "--hub-name", "west", "--log-level", "info")
	waitFor(t, "west to reach NATS", func() bool { return strings.Contains(b.Stderr.String(), "NATS reached") })
	ea := start(t, nil, "connect", "--addr", east, "--recv-only")
	wb := start(t, nil, "connect", "--addr", west, "--codec", "length", "--recv-only")
	waitFor(t, "the receivers", func() bool {
		return strings.Contains(a.Stdout.String(), "connected") && strings.Contains(b.Stdout.String(), "connected")
	})
	if _, e, code := run(t, "hello from west\n", "connect", "--addr", west, "--codec", "length"); code != 0 {
		t.Fatal(e)
	}
	if _, e, code := run(t, "hello from east\n", "connect", "--addr", east); code != 0 {
		t.Fatal(e)
	}
	io.WriteString(a.Stdin, "the east host speaks\n")
	waitFor(t, "each side's messages on the other", func() bool {
		return strings.Contains(ea.Stdout.String(), "hello from west\n") &&
			strings.Contains(wb.Stdout.String(), "hello from east\n") && strings.Contains(wb.Stdout.String(), "the east host speaks\n")
	})
	waitFor(t, "the hubs to print remote messages", func() bool {
		return strings.Contains(a.Stdout.String(), "west/#2: hello from west") && strings.Contains(b.Stdout.String(), "east/#2: hello from east") &&
			strings.Contains(b.Stdout.String(), "east/host: the east host speaks")
	})
	// One more round trip, so that an echo of the first messages would have
	// arrived by now.
	if _, e, code := run(t, "last\n", "connect", "--addr", west, "--codec", "length"); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "the last message at east", func() bool { return strings.Contains(ea.Stdout.String(), "last\n") })
	if n := strings.Count(ea.Stdout.String(), "hello from east\n"); n != 1 {
		t.Errorf("east's receiver got east's message %d times (an echo through NATS?):\n%s", n, ea.Stdout)
	}
}

// TestFederatedHubsOverTLS: a hub's embedded NATS server takes TLS with
// client certificates; a hub that trusts its CA and shows a certificate
// federates, one without a certificate does not.
func TestFederatedHubsOverTLS(t *testing.T) {
	pki := tlstest.New(t)
	srvCert, srvKey := pki.Issue(t, "east", true)
	hubCert, hubKey := pki.Issue(t, "west", false)
	east, west, lone := sockPath(t), sockPath(t), sockPath(t)
	a := startHub(t, "--addr", east, "--nats-listen", "127.0.0.1:0", "--hub-name", "east",
		"--nats-listen-cert", srvCert, "--nats-listen-key", srvKey, "--nats-listen-ca", pki.CA)
	var natsURL string
	waitFor(t, "the embedded NATS server's address", func() bool {
		_, rest, ok := strings.Cut(a.Stderr.String(), "NATS for other hubs at ")
		natsURL, _, _ = strings.Cut(rest, " ")
		return ok && strings.HasPrefix(natsURL, "tls://")
	})
	b := startHub(t, "--addr", west, "--federate", natsURL, "--hub-name", "west", "--log-level", "info",
		"--nats-ca", pki.CA, "--nats-cert", hubCert, "--nats-key", hubKey)
	c := startHub(t, "--addr", lone, "--federate", natsURL, "--hub-name", "lone", "--log-level", "info", "--nats-ca", pki.CA)
	waitFor(t, "west to reach NATS", func() bool { return strings.Contains(b.Stderr.String(), "NATS reached") })
	ea := start(t, nil, "connect", "--addr", east, "--recv-only")
	waitFor(t, "the receiver", func() bool { return strings.Contains(a.Stdout.String(), "connected") })
	if _, e, code := run(t, "over TLS from west\n", "connect", "--addr", west); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "west's message at east", func() bool { return strings.Contains(ea.Stdout.String(), "over TLS from west\n") })
	waitFor(t, "the hub without a certificate to say NATS is not reachable", func() bool {
		return strings.Contains(c.Stderr.String(), "NATS not reachable")
	})
	if strings.Contains(c.Stderr.String(), "NATS reached") {
		t.Errorf("a hub without a client certificate reached NATS:\n%s", c.Stderr)
	}
}

// TestFederationFlagsRefused: federation flags are checked before anything
// is opened.
func TestFederationFlagsRefused(t *testing.T) {
	sock := sockPath(t)
	for _, args := range [][]string{
		{"--federate", "http://x:1"},
		{"--federate", "nats://127.0.0.1:4222", "--nats-listen", ":0"},
		{"--nats-routes", "nats-route://127.0.0.1:1"},
		{"--nats-listen", ":0", "--nats-routes", "nats-route://127.0.0.1:1"},
		{"--federate", "nats://127.0.0.1:4222", "--nats-creds", "/nonexistent/creds"},
		{"--federate", "nats://127.0.0.1:4222", "--nats-cert", "/etc/hostname"},
		{"--federate", "nats://127.0.0.1:4222", "--hub-name", "a/b"},
		{"--federate", "nats://127.0.0.1:4222", "--federate-buffer", "10"},
		{"--federate", "nats://127.0.0.1:4222", "--nats-listen-cert", "/etc/hostname", "--nats-listen-key", "/etc/hostname"},
		{"--nats-listen", ":0", "--nats-listen-cert", "/etc/hostname"},
		{"--nats-listen", ":0", "--nats-listen-cert", "/etc/hostname", "--nats-listen-key", "/etc/hostname"},
		{"--nats-listen", ":0", "--nats-listen-ca", "/etc/hostname"},
	} {
		_, e, code := run(t, "", append([]string{"serve", "--addr", sock}, args...)...)
		if code != 2 || e == "" {
			t.Errorf("serve %v: exit %d, %q; want 2 and a reason", args, code, e)
		}
	}
}

// metricsURL waits for a command's "metrics at URL" line.
func metricsURL(t *testing.T, p *proc) string {
	t.Helper()
	var u string
	waitFor(t, "the metrics address", func() bool {
		_, rest, ok := strings.Cut(p.Stderr.String(), "metrics at ")
		u, _, _ = strings.Cut(rest, "\n")
		return ok && strings.HasSuffix(u, "/metrics")
	})
	return u
}

// scrapeHas fetches url and reports whether every line of want is a sample
// there.
func scrapeHas(t *testing.T, url string, want ...string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, w := range want {
		if !strings.Contains("\n"+string(body), "\n"+w+"\n") {
			return false
		}
	}
	return true
}

// TestMetricsFlag: serve and bridge serve Prometheus metrics that count
// what passed through them; a bad --metrics address is a usage error.
func TestMetricsFlag(t *testing.T) {
	sock := sockPath(t)
	hub := startHub(t, "--addr", sock, "--metrics", "127.0.0.1:0")
	url := metricsURL(t, hub)
	recv := start(t, nil, "connect", "--addr", sock, "--recv-only")
	waitFor(t, "the receiver", func() bool { return strings.Contains(hub.Stdout.String(), "connected") })
	if _, e, code := run(t, "one\ntwo\nthree\n", "connect", "--addr", sock); code != 0 {
		t.Fatal(e)
	}
	waitFor(t, "the messages", func() bool { return recv.Stdout.String() == "one\ntwo\nthree\n" })
	waitFor(t, "the hub's counters", func() bool {
		return scrapeHas(t, url, `tether_messages_received_total{room="main"} 3`, `tether_received_bytes_total{room="main"} 11`,
			`tether_messages_delivered_total{room="main"} 3`, `tether_disconnects_total{reason="left"} 1`, `tether_peers{room="main",transport="unix"} 1`)
	})

	target := unixEcho(t)
	front := sockPath(t)
	br := start(t, nil, "bridge", "--metrics", "127.0.0.1:0", "unix://"+front, "unix://"+target)
	burl := metricsURL(t, br)
	c, err := net.Dial("unix", front)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "ping\n")
	// While the connection is open, its bytes already count.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatalf("the echo through the bridge: %v", err)
	}
	waitFor(t, "the open connection's bytes", func() bool {
		return scrapeHas(t, burl, `tether_bridge_bytes_total{direction="in"} 5`, `tether_bridge_bytes_total{direction="out"} 5`, `tether_bridge_connections 1`)
	})
	c.(*net.UnixConn).CloseWrite()
	io.ReadAll(c)
	c.Close()
	waitFor(t, "the bridge's counters", func() bool {
		return scrapeHas(t, burl, `tether_bridge_connections_total{result="done"} 1`, `tether_bridge_bytes_total{direction="in"} 5`,
			`tether_bridge_bytes_total{direction="out"} 5`, `tether_bridge_connections 0`)
	})

	for _, args := range [][]string{{"serve", "--addr", sockPath(t), "--metrics", "9464"}, {"bridge", "--metrics", "nowhere", "unix://" + sockPath(t), "unix://" + target}} {
		if _, e, code := run(t, "", args...); code != 2 || !strings.Contains(e, "HOST:PORT") {
			t.Errorf("%v: exit %d, %q; want 2 and the form", args, code, e)
		}
	}
}
