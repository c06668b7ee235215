//go:build linux

package systemd_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/zerotest"
	"github.com/tetherkit/tether/transports/systemd"
)

// The tests run this test binary again as the activated service, the way
// systemd would start it: sockets from fd 3 on, LISTEN_FDS, LISTEN_FDNAMES,
// and LISTEN_PID set to the service's own pid by a shell that then execs it.
func TestMain(m *testing.M) {
	if os.Getenv("TETHER_SYSTEMD_CHILD") != "" {
		child()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child reports, one line each, what the transport made of the sockets it
// was passed; it accepts one connection on each listener it gets, and
// answers each with a line saying what it saw.
func child() {
	ctx := context.Background()
	var tr core.Transport = systemd.Transport{}
	if opts := os.Getenv("TETHER_SYSTEMD_OPTIONS"); opts != "" {
		v, _ := url.ParseQuery(opts)
		var err error
		if tr, err = core.Configure(tr, v); err != nil {
			fmt.Println("configure:", err)
			return
		}
	}
	fmt.Println("activated:", systemd.Activated())
	defer func() { fmt.Println("environment left:", os.Getenv("LISTEN_FDS") != "") }()
	for _, name := range strings.Split(os.Getenv("TETHER_SYSTEMD_LISTEN"), ",") {
		if name == "all" {
			name = ""
		}
		l, err := tr.Listen(ctx, name)
		if err != nil {
			fmt.Printf("listen %q: %v\n", name, err)
			continue
		}
		fmt.Printf("listen %q: ok\n", name)
		os.Stdout.Sync()
		n, _ := strconv.Atoi(os.Getenv("TETHER_SYSTEMD_ACCEPT"))
		for range n {
			c, err := l.Accept()
			if err != nil {
				fmt.Printf("accept %q: %v\n", name, err)
				break
			}
			verdict := "admitted"
			if a, ok := l.(core.Admitter); ok {
				if err := a.Admit(c); err != nil {
					verdict = "refused: " + err.Error()
				}
			}
			fmt.Fprintf(c, "%s %s %s\n", c.LocalAddr().Network(), core.Identity(c), verdict)
			c.Close()
		}
		l.Close()
	}
}

// passed is a socket for the service, and how to reach it.
type passed struct {
	file    *os.File
	network string
	address string
}

func unixSocket(t *testing.T) passed {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return passed{f, "unix", path}
}

func tcpSocket(t *testing.T) passed {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := l.(*net.TCPListener).File()
	addr := l.Addr().String()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return passed{f, "tcp", addr}
}

// service starts the test binary as an activated service with socks under
// names, and returns its output as lines.
func service(t *testing.T, socks []passed, names string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, exe)
	cmd.Env = append(os.Environ(), "TETHER_SYSTEMD_CHILD=1", "LISTEN_FDS="+strconv.Itoa(len(socks)))
	if names != "" {
		cmd.Env = append(cmd.Env, "LISTEN_FDNAMES="+names)
	}
	cmd.Env = append(cmd.Env, env...)
	for _, s := range socks {
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.file)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		s.file.Close()
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// expect reads the next line of the service's report and checks that it
// holds every one of wants.
func expect(t *testing.T, lines *bufio.Scanner, wants ...string) {
	t.Helper()
	if !lines.Scan() {
		t.Fatalf("the service's report ended (%v) before a line with %q", lines.Err(), wants)
	}
	for _, w := range wants {
		if !strings.Contains(lines.Text(), w) {
			t.Fatalf("the service reported %q; want it to hold %q", lines.Text(), w)
		}
	}
}

// ask dials a passed socket and returns the service's answer.
func ask(t *testing.T, s passed) string {
	t.Helper()
	c, err := net.DialTimeout(s.network, s.address, 10*time.Second)
	if err != nil {
		t.Fatalf("dialing the passed %s socket: %v", s.network, err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("the service's answer on %s: %v", s.network, err)
	}
	return line
}

// TestServesPassedSocketsByName: a named socket is served alone, with its
// family's rules (a unix peer known by its credentials); each is given out
// once; an unknown name lists the passed ones; "" serves the rest together;
// the variables are not left for the service's children.
func TestServesPassedSocketsByName(t *testing.T) {
	chat, web, extra := unixSocket(t), tcpSocket(t), unixSocket(t)
	_, lines := service(t, []passed{chat, web, extra}, "chat:web:extra",
		"TETHER_SYSTEMD_LISTEN=nope,chat,chat,all", "TETHER_SYSTEMD_ACCEPT=2")
	expect(t, lines, "activated: true")
	expect(t, lines, `listen "nope"`, `no unused socket named "nope"`, "passed: chat, web, extra")
	expect(t, lines, `listen "chat": ok`)
	uid := fmt.Sprintf("uid=%d", os.Getuid())
	for range 2 {
		if got := ask(t, chat); !strings.HasPrefix(got, "unix "+uid) || !strings.Contains(got, "admitted") {
			t.Errorf("the chat socket's answer %q; want a unix peer known as %s, admitted", got, uid)
		}
	}
	expect(t, lines, `listen "chat"`, `no unused socket named "chat"`)
	expect(t, lines, `listen "": ok`)
	if got := ask(t, web); !strings.HasPrefix(got, "tcp 127.0.0.1:") {
		t.Errorf("the web socket's answer %q; want a tcp peer", got)
	}
	if got := ask(t, extra); !strings.HasPrefix(got, "unix "+uid) {
		t.Errorf("the extra socket's answer %q; want a unix peer", got)
	}
	expect(t, lines, "environment left: false")
}

// TestUnnamedSockets: without LISTEN_FDNAMES, sockets are LISTEN_FD_3 on.
func TestUnnamedSockets(t *testing.T) {
	a, b := unixSocket(t), unixSocket(t)
	_, lines := service(t, []passed{a, b}, "", "TETHER_SYSTEMD_LISTEN=LISTEN_FD_4", "TETHER_SYSTEMD_ACCEPT=1")
	expect(t, lines, "activated: true")
	expect(t, lines, `listen "LISTEN_FD_4": ok`)
	if got := ask(t, b); !strings.HasPrefix(got, "unix ") {
		t.Errorf("the second socket's answer %q", got)
	}
}

// TestAdmissionOptions: the unix transport's allow-uid applies to passed
// unix sockets; an option no family takes is refused with the list.
func TestAdmissionOptions(t *testing.T) {
	s := unixSocket(t)
	_, lines := service(t, []passed{s}, "chat", "TETHER_SYSTEMD_LISTEN=chat", "TETHER_SYSTEMD_ACCEPT=1",
		"TETHER_SYSTEMD_OPTIONS=allow-uid="+strconv.Itoa(os.Getuid()+1))
	expect(t, lines, "activated: true")
	expect(t, lines, `listen "chat": ok`)
	if got := ask(t, s); !strings.Contains(got, "refused") {
		t.Errorf("a peer not in allow-uid was %q", got)
	}

	_, err := systemd.Transport{}.Configure(url.Values{"socket-mode": {"0600"}})
	if err == nil || !strings.Contains(err.Error(), "allow-uid") {
		t.Errorf("socket-mode on passed sockets (which systemd made): %v; want a refusal listing the options", err)
	}
}

// TestNotActivated: sockets meant for another process (LISTEN_PID is not
// ours), or none at all, are not taken, and Listen says how to pass some.
func TestNotActivated(t *testing.T) {
	s := unixSocket(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "TETHER_SYSTEMD_CHILD=1", "LISTEN_FDS=1", "LISTEN_PID=1", "TETHER_SYSTEMD_LISTEN=all")
	cmd.ExtraFiles = []*os.File{s.file}
	out, err := cmd.Output()
	s.file.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"activated: false", "no sockets were passed", "systemd-socket-activate"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("a service whose LISTEN_PID is another's reported:\n%s\nwant %q", out, want)
		}
	}
	if systemd.Activated() {
		t.Error("the test process, which was passed nothing, reports it was activated")
	}
}

// TestRefusals: dialing and names with ':' are refused with what to do.
func TestRefusals(t *testing.T) {
	if _, err := (systemd.Transport{}).Dial(context.Background(), "chat"); err == nil || !strings.Contains(err.Error(), "unix://") {
		t.Errorf("Dial: %v; want a refusal that names what to dial", err)
	}
	if _, err := (systemd.Transport{}).ParseAddr("a:b"); err == nil {
		t.Error(`ParseAddr("a:b") accepted a name LISTEN_FDNAMES cannot hold`)
	}
	if a, err := (systemd.Transport{}).ParseAddr(""); err != nil || a.Network() != "systemd" {
		t.Errorf(`ParseAddr(""): %v, %v`, a, err)
	}
}

// TestZeroValues: every exported type's zero value answers every method
// without a panic or a hang.
func TestZeroValues(t *testing.T) {
	zerotest.Calls(t, &systemd.Transport{})
	zerotest.Calls(t, &systemd.Addr{})
}
