package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
)

// Ports used in the VMs: the host's hubs and the guest's hubs, per codec.
var (
	codecs    = []string{"line", "length"}
	hostPort  = map[string]int{"line": 5000, "length": 5001}
	guestPort = map[string]int{"line": 6000, "length": 6001}
)

// lines is how many messages each side sends in the host and guest chat.
const lines = 500

func role(t *testing.T, want string) string {
	if os.Getenv("TETHER_VSOCK_VM") != want {
		t.Skipf("runs only in the %s VM of .ci/vsock-vm", want)
	}
	bin := os.Getenv("TETHER_BIN")
	if bin == "" {
		t.Fatal("TETHER_BIN is not set")
	}
	return bin
}

// TestLoopbackHub runs a hub on vsock in the loopback guest with several
// tether connect clients on both codecs: thousands of messages, each checked.
func TestLoopbackHub(t *testing.T) {
	bin := role(t, "loopback")
	for i, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			port := 7000 + i
			hub := proctest.Start(t, bin, nil, "serve", "--addr", fmt.Sprintf("vsock://any:%d", port), "--codec", codec, "--quiet")
			proctest.WaitFor(t, "the hub", 20*time.Second, func() bool { return strings.Contains(hub.Stderr.String(), "serving") })
			addr := fmt.Sprintf("vsock://local:%d", port)
			var recvs []*proctest.Proc
			for range 2 {
				recvs = append(recvs, proctest.Start(t, bin, nil, "connect", "--addr", addr, "--codec", codec, "--recv-only"))
			}
			proctest.WaitFor(t, "receivers", 20*time.Second, func() bool { return strings.Count(hub.Stdout.String(), "connected (vsock local(1)") == 2 })
			const senders, perSender = 3, 2000
			var wg sync.WaitGroup
			for s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, e, code := proctest.Run(t, bin, numbered(fmt.Sprintf("s%d", s), perSender), "connect", "--addr", addr, "--codec", codec); code != 0 {
						t.Errorf("sender %d: exit %d: %s", s, code, e)
					}
				}()
			}
			wg.Wait()
			for _, r := range recvs {
				proctest.WaitFor(t, "every message", 60*time.Second, func() bool { return proctest.CountLines(r.Stdout.String()) >= senders*perSender })
				for s := range senders {
					if err := inOrder(r.Stdout.String(), fmt.Sprintf("s%d", s), perSender); err != nil {
						t.Fatal(err)
					}
				}
				if n := proctest.CountLines(r.Stdout.String()); n != senders*perSender {
					t.Fatalf("receiver got %d lines, want %d", n, senders*perSender)
				}
			}
		})
	}
}

// numbered returns n input lines "prefix i" followed by a payload that varies
// in length and holds bytes a framing bug would mangle.
func numbered(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(line(prefix, i))
		b.WriteByte('\n')
	}
	return b.String()
}

func line(prefix string, i int) string {
	return fmt.Sprintf("%s %d %s\t✓\r", prefix, i, strings.Repeat("ab", i%40))
}

// inOrder checks that out holds exactly n lines of prefix, in order, intact.
func inOrder(out, prefix string, n int) error {
	next := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, prefix+" ") {
			continue
		}
		if l != line(prefix, next) {
			return fmt.Errorf("from %s: got %q, want %q", prefix, l, line(prefix, next))
		}
		next++
	}
	if next != n {
		return fmt.Errorf("from %s: got %d lines, want %d", prefix, next, n)
	}
	return nil
}

// chatter is one side of a chat: a tether connect in pipe mode whose input
// the test writes and whose output it watches.
type chatter struct {
	p *proctest.Proc
}

func (c chatter) send(prefix string, n int) {
	io.WriteString(c.p.Stdin, numbered(prefix, n))
}

func (c chatter) await(t *testing.T, prefix string, n int, timeout time.Duration) {
	t.Helper()
	proctest.WaitFor(t, fmt.Sprintf("%d lines from %s", n, prefix), timeout, func() bool {
		return strings.Count(c.p.Stdout.String(), prefix+" ") >= n
	})
	if err := inOrder(c.p.Stdout.String(), prefix, n); err != nil {
		t.Fatal(err)
	}
}

// finish ends the input and expects a clean exit.
func (c chatter) finish(t *testing.T) {
	t.Helper()
	c.p.Stdin.Close()
	if code := c.p.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("connect exited %d: %s", code, c.p.Stderr)
	}
}

// dial starts "tether connect" to addr with --reconnect: it keeps trying,
// with backoff, while nobody listens yet, and holds what it is sent until it
// is through.
func dial(t *testing.T, bin, addr, codec string) chatter {
	t.Helper()
	return chatter{proctest.Start(t, bin, nil, "connect", "--reconnect", "--addr", addr, "--codec", codec, "--pipe", "--log-level", "error")}
}

// bridgeBytes is what each bridge test sends through two tether bridges and
// a vsock link, and expects back: bytes of every value, not lines.
var bridgeBytes = func() []byte {
	b := make([]byte, 2<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// startBridge runs tether bridge FROM TO and waits until it listens.
func startBridge(t *testing.T, bin string, args ...string) *proctest.Proc {
	t.Helper()
	b := proctest.Start(t, bin, nil, append([]string{"bridge"}, args...)...)
	proctest.WaitFor(t, "the bridge to listen", 30*time.Second, func() bool { return strings.Contains(b.Stderr.String(), "bridging") })
	return b
}

// roundTrip sends bridgeBytes into a bridge's unix front, half-closes, and
// checks that exactly those bytes come back and the connection then ends.
func roundTrip(t *testing.T, front string) {
	t.Helper()
	c, err := net.Dial("unix", front)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		c.Write(bridgeBytes)
		c.(*net.UnixConn).CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(240 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, bridgeBytes) {
		t.Fatalf("through the bridges and back: %d bytes (%v), want the %d sent, byte-exact", len(got), err, len(bridgeBytes))
	}
}

// bridged waits for a bridge's log to show a connection that carried
// bridgeBytes both ways and ended, from a peer known by identity.
func bridged(t *testing.T, b *proctest.Proc, identity string) {
	t.Helper()
	want := fmt.Sprintf("bytes_in=%d bytes_out=%d", len(bridgeBytes), len(bridgeBytes))
	proctest.WaitFor(t, "the far bridge's log to show "+want, 300*time.Second, func() bool { return strings.Contains(b.Stderr.String(), want) })
	if !strings.Contains(b.Stderr.String(), identity) {
		t.Fatalf("the bridge's log does not name the peer %s:\n%s", identity, b.Stderr)
	}
}

// TestHostSide plays the host of a real vsock guest: a hub on vsock and a
// unix socket at once for each codec, the inner guest booted with
// vhost-vsock-pci (CID 3), a chat both ways between a unix client here and a
// tether connect in the guest; then the reverse, dialing the guest's hubs;
// then tether bridge both ways, bytes and a half-close through two bridges.
func TestHostSide(t *testing.T) {
	bin := role(t, "host")
	hubs := map[string]*proctest.Proc{}
	locals := map[string]chatter{}
	for _, codec := range codecs {
		sock := fmt.Sprintf("/tmp/host-%s.sock", codec)
		hub := proctest.Start(t, bin, nil, "serve", "--codec", codec,
			"--listen", fmt.Sprintf("vsock://any:%d", hostPort[codec]), "--listen", "unix://"+sock)
		proctest.WaitFor(t, "the host hub", 30*time.Second, func() bool { return strings.Count(hub.Stderr.String(), "serving") == 2 })
		local := proctest.Start(t, bin, nil, "connect", "--addr", "unix://"+sock, "--codec", codec, "--pipe")
		proctest.WaitFor(t, "the local client", 30*time.Second, func() bool { return strings.Contains(hub.Stdout.String(), "#1 connected (unix") })
		hubs[codec], locals[codec] = hub, chatter{local}
	}

	// Bridges both ways: a unix socket here in front of a service in the
	// guest, and this machine's service behind a socket in the guest.
	proctest.EchoUnix(t, "/tmp/host-echo.sock")
	back := startBridge(t, bin, "vsock://any:6101", "unix:///tmp/host-echo.sock")
	front := startBridge(t, bin, "--dial-timeout", "240s", "unix:///tmp/vm-svc.sock", "vsock://3:6100")

	guest := bootGuest(t)

	for _, codec := range codecs {
		t.Run("guest dials host/"+codec, func(t *testing.T) {
			hub, local := hubs[codec], locals[codec]
			proctest.WaitFor(t, "the guest to join", 180*time.Second, func() bool {
				return strings.Contains(hub.Stdout.String(), "connected (vsock vm(3)")
			})
			local.send("host-"+codec, lines)
			local.await(t, "guest-"+codec, lines, 120*time.Second)
			local.finish(t)
			if !strings.Contains(hub.Stdout.String(), `#2: "guest-`+codec+` 0 `) {
				t.Fatalf("hub output does not show the guest's messages:\n%s", hub.Stdout)
			}
		})
	}
	for _, codec := range codecs {
		t.Run("host dials guest/"+codec, func(t *testing.T) {
			c := dial(t, bin, fmt.Sprintf("vsock://3:%d", guestPort[codec]), codec)
			// The guest speaks first, once it sees this connection in its
			// room; so both ends are known to be in the room before we answer.
			c.await(t, "guestlocal-"+codec, lines, 120*time.Second)
			c.send("hostdial-"+codec, lines)
			c.finish(t)
		})
	}
	t.Run("bridge to the guest", func(t *testing.T) {
		roundTrip(t, "/tmp/vm-svc.sock")
		bridged(t, front, "uid=0,pid=")
	})
	t.Run("bridge from the guest", func(t *testing.T) { bridged(t, back, "vm(3)") })
	select {
	case res := <-guest:
		if res != "PASS" {
			t.Fatalf("the guest reported %s", res)
		}
	case <-time.After(180 * time.Second):
		t.Fatal("the guest did not report")
	}
}

// The inner guest's init prints a heartbeat line every 2 s. A guest whose
// heartbeat stops has a frozen virtual CPU, a fault of the emulated nested
// virtualization rather than of a test (a hung test does not stop init's
// loop): bootGuest then prints a TETHER-VM-FAULT line, which .ci/vsock-vm
// treats as a machine fault. The first heartbeat may take firstHeartbeat
// (the inner kernel boots); later ones, at most frozenAfter apart.
const (
	heartbeat      = "TETHER-GUEST-ALIVE"
	firstHeartbeat = 120 * time.Second
	frozenAfter    = 45 * time.Second
)

// bootGuest starts the inner VM and returns a channel that receives the
// guest's verdict ("PASS" or "FAIL") from its console.
func bootGuest(t *testing.T) <-chan string {
	t.Helper()
	accel := "kvm"
	if _, err := os.Stat("/dev/kvm"); err != nil {
		accel = "tcg"
	}
	cmd := exec.Command("qemu-system-x86_64", "-accel", accel, "-M", "pc", "-m", "256", "-smp", "1",
		"-nographic", "-no-reboot", "-nic", "none", "-vga", "none",
		"-device", "vhost-vsock-pci,guest-cid=3",
		"-kernel", "/l2/vmlinuz", "-initrd", "/l2/initrd.gz",
		"-append", "console=ttyS0 panic=-1 quiet")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the inner guest: %v", err)
	}
	verdict := make(chan string, 1)
	var last atomic.Int64 // when the last heartbeat came, in Unix nanoseconds
	last.Store(time.Now().Add(firstHeartbeat - frozenAfter).UnixNano())
	var ended atomic.Bool // a verdict came, the console closed, or the test stops the guest
	t.Cleanup(func() { ended.Store(true); cmd.Process.Kill(); cmd.Wait() })
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for range tick.C {
			if ended.Load() {
				return
			}
			if since := time.Since(time.Unix(0, last.Load())); !ended.Load() && since > frozenAfter {
				fmt.Printf("TETHER-VM-FAULT: no heartbeat from the inner guest for %v: its virtual CPU is frozen\n", since.Round(time.Second))
				return
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := strings.TrimRight(sc.Text(), "\r")
			if rest, ok := strings.CutSuffix(l, heartbeat); ok {
				last.Store(time.Now().UnixNano())
				if l = rest; strings.TrimSpace(l) == "" {
					continue
				}
			}
			fmt.Println("guest| " + l)
			if rest, ok := strings.CutPrefix(l, "TETHER-GUEST-VERDICT "); ok && !ended.Swap(true) {
				verdict <- strings.TrimSpace(rest)
			}
		}
		if !ended.Swap(true) {
			fmt.Println("TETHER-VM-FAULT: the inner guest's console closed without a verdict")
			verdict <- "FAIL (console closed without a verdict)"
		}
	}()
	return verdict
}

// TestGuestSide is the inner guest (CID 3): it chats with the host's hubs
// over vsock://host:PORT, then serves hubs of its own for the host to dial.
func TestGuestSide(t *testing.T) {
	bin := role(t, "guest")
	proctest.EchoUnix(t, "/tmp/svc.sock")
	back := startBridge(t, bin, "vsock://any:6100", "unix:///tmp/svc.sock")
	front := startBridge(t, bin, "--dial-timeout", "240s", "unix:///tmp/host-svc.sock", "vsock://host:6101")
	for _, codec := range codecs {
		t.Run("dial host/"+codec, func(t *testing.T) {
			c := dial(t, bin, fmt.Sprintf("vsock://host:%d", hostPort[codec]), codec)
			c.send("guest-"+codec, lines)
			c.await(t, "host-"+codec, lines, 120*time.Second)
			c.finish(t)
		})
	}
	for _, codec := range codecs {
		t.Run("serve for host/"+codec, func(t *testing.T) {
			sock := fmt.Sprintf("/tmp/guest-%s.sock", codec)
			hub := proctest.Start(t, bin, nil, "serve", "--codec", codec,
				"--listen", fmt.Sprintf("vsock://any:%d", guestPort[codec]), "--listen", "unix://"+sock)
			proctest.WaitFor(t, "the guest hub", 30*time.Second, func() bool { return strings.Count(hub.Stderr.String(), "serving") == 2 })
			local := chatter{proctest.Start(t, bin, nil, "connect", "--addr", "unix://"+sock, "--codec", codec, "--pipe")}
			proctest.WaitFor(t, "the local client and the host to join", 180*time.Second, func() bool {
				out := hub.Stdout.String()
				return strings.Contains(out, "connected (unix") && strings.Contains(out, "connected (vsock host(2)")
			})
			local.send("guestlocal-"+codec, lines)
			local.await(t, "hostdial-"+codec, lines, 120*time.Second)
			local.finish(t)
		})
	}
	t.Run("bridge to the host", func(t *testing.T) {
		roundTrip(t, "/tmp/host-svc.sock")
		bridged(t, front, "uid=0,pid=")
	})
	t.Run("bridge from the host", func(t *testing.T) { bridged(t, back, "host(2)") })
}

// TestDoctorSeesLoopback checks that doctor reports the loopback guest's
// vsock as it is.
func TestDoctorSeesLoopback(t *testing.T) {
	bin := role(t, "loopback")
	out, errOut, code := proctest.Run(t, bin, "", "doctor")
	if code != 0 {
		t.Fatalf("doctor: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"/dev/vsock present", "local CID:", "vsock_loopback loaded"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestVMChatExample runs examples/vmchat over vsock loopback: the host side
// and the guest side each type a line and see the other's.
func TestVMChatExample(t *testing.T) {
	role(t, "loopback")
	vmchat := os.Getenv("TETHER_VMCHAT")
	if vmchat == "" {
		t.Skip("TETHER_VMCHAT is not set")
	}
	h := proctest.Start(t, vmchat, nil, "-listen", "vsock://any:5300")
	proctest.WaitFor(t, "the host side", 20*time.Second, func() bool { return strings.Contains(h.Stdout.String(), "listening on vsock://any:5300") })
	g := proctest.Start(t, vmchat, nil, "-dial", "vsock://local:5300")
	proctest.WaitFor(t, "the guest to join", 20*time.Second, func() bool { return strings.Contains(h.Stdout.String(), "joined from local(1)") })
	io.WriteString(g.Stdin, "hello host\n")
	proctest.WaitFor(t, "the guest's line", 20*time.Second, func() bool { return strings.Contains(h.Stdout.String(), ": hello host\n") })
	io.WriteString(h.Stdin, "hello guest\n")
	proctest.WaitFor(t, "the host's line", 20*time.Second, func() bool { return strings.Contains(g.Stdout.String(), "host: hello guest\n") })
	g.Stdin.Close()
	if code := g.Wait(t, 20*time.Second); code != 0 {
		t.Fatalf("guest side exit %d: %s", code, g.Stderr)
	}
}

// TestBenchOverVsockLoopback runs tether bench through a hub on vsock.
func TestBenchOverVsockLoopback(t *testing.T) {
	bin := role(t, "loopback")
	hub := proctest.Start(t, bin, nil, "serve", "--addr", "vsock://any:7100", "--quiet")
	proctest.WaitFor(t, "the hub", 20*time.Second, func() bool { return strings.Contains(hub.Stderr.String(), "serving") })
	out, errOut, code := proctest.Run(t, bin, "", "bench", "--addr", "vsock://local:7100", "--duration", "500ms", "--clients", "4")
	if code != 0 {
		t.Fatalf("bench: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"point-to-point", "round trip", "fan-out"} {
		if !strings.Contains(out, want) {
			t.Fatalf("bench output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}
