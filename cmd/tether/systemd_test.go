//go:build linux

package main_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
)

// activated starts tether the way systemd starts a socket-activated
// service: the sockets from fd 3 on, LISTEN_FDS, LISTEN_FDNAMES, and
// LISTEN_PID set to tether's own pid by a shell that then execs it.
func activated(t *testing.T, files []*os.File, names string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+names)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	p := proctest.StartCmd(t, cmd)
	for _, f := range files {
		f.Close()
	}
	return p
}

// systemdSockets makes what a .socket unit with ListenStream=PATH and
// ListenStream=127.0.0.1:0 would pass.
func systemdSockets(t *testing.T) (unixPath, tcpAddr string, files []*os.File) {
	t.Helper()
	unixPath = sockPath(t)
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: unixPath, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tcpAddr = tl.Addr().String()
	for _, l := range []interface{ File() (*os.File, error) }{ul, tl} {
		f, err := l.File()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	ul.Close()
	tl.Close()
	return unixPath, tcpAddr, files
}

// TestSocketActivatedHub: tether serve started by socket activation serves
// every passed socket without a flag (a unix client and a TCP client chat),
// tells the manager it is ready, how many peers it has, that it is alive
// (the watchdog) and that it is stopping, and leaves the socket file, which
// is the manager's, in place.
func TestSocketActivatedHub(t *testing.T) {
	unixPath, tcpAddr, files := systemdSockets(t)
	n := proctest.ListenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	hub := activated(t, files, "chat:web", []string{"NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=400000"}, "serve", "--log-level", "info")
	n.Await(t, "READY=1", "STATUS=0 peers")
	for _, want := range []string{"serving systemd://", `name=chat network=unix address=` + unixPath, "name=web network=tcp address=" + tcpAddr} {
		waitFor(t, fmt.Sprintf("%q in the hub's log", want), func() bool { return strings.Contains(hub.Stderr.String(), want) })
	}
	a := start(t, nil, "connect", "--addr", unixPath, "--recv-only")
	b := start(t, nil, "connect", "--addr", "tcp://"+tcpAddr)
	waitFor(t, "both peers at the hub", func() bool { return strings.Count(hub.Stdout.String(), "connected") == 2 })
	n.Await(t, "STATUS=2 peers")
	n.Await(t, "WATCHDOG=1")
	b.Stdin.Write([]byte("over tcp to a unix peer\n"))
	waitFor(t, "the message at the unix peer", func() bool { return a.Stdout.String() == "over tcp to a unix peer\n" })

	hub.Cmd.Process.Signal(syscall.SIGTERM)
	n.Await(t, "STOPPING=1")
	if code := hub.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("the hub exited %d on SIGTERM", code)
	}
	if _, err := os.Stat(unixPath); err != nil {
		t.Errorf("the passed socket's file is the manager's to remove, but: %v", err)
	}
}

// TestSocketActivatedByName: --listen systemd://NAME?codec=… picks one
// passed socket; an unknown name fails before serving, listing the names;
// bridge serves a passed socket too and notifies.
func TestSocketActivatedByName(t *testing.T) {
	_, _, files := systemdSockets(t)
	doc := activated(t, files, "chat:web", nil, "doctor")
	if code := doc.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("doctor when activated: exit %d", code)
	}
	for _, want := range []string{"(default systemd)", "passed sockets:  2: chat, web"} {
		if !strings.Contains(doc.Stdout.String(), want) {
			t.Errorf("doctor when activated lacks %q:\n%s", want, doc.Stdout)
		}
	}

	unixPath, _, files := systemdSockets(t)
	hub := activated(t, files, "chat:web", nil, "serve", "--listen", "systemd://nope")
	if code := hub.Wait(t, 10*time.Second); code == 0 || !strings.Contains(hub.Stderr.String(), "passed: chat, web") {
		t.Fatalf("serve on an unknown passed name: exit %d:\n%s", code, hub.Stderr)
	}

	unixPath, _, files = systemdSockets(t)
	hub = activated(t, files, "chat:web", nil, "serve", "--listen", "systemd://chat?codec=length")
	waitFor(t, "the hub to serve", func() bool { return strings.Contains(hub.Stderr.String(), "serving systemd://chat (codec length)") })
	recv := start(t, nil, "connect", "--addr", unixPath, "--codec", "length", "--recv-only")
	waitFor(t, "the receiver", func() bool { return strings.Contains(hub.Stdout.String(), "connected") })
	if _, e, code := run(t, "framed\n", "connect", "--addr", "unix://"+unixPath+"?codec=length"); code != 0 {
		t.Fatalf("sending over the passed socket: exit %d: %s", code, e)
	}
	waitFor(t, "the message", func() bool { return recv.Stdout.String() == "framed\n" })

	target := unixEcho(t)
	unixPath, _, files = systemdSockets(t)
	n := proctest.ListenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	br := activated(t, files, "front:web", []string{"NOTIFY_SOCKET=" + n.Path}, "bridge", "systemd://front", "unix://"+target)
	n.Await(t, "READY=1", "STATUS=0 connections")
	c, err := net.Dial("unix", unixPath)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("through a passed socket\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 24)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "through a passed socket\n" {
		t.Fatalf("echo through the activated bridge: %q, %v", got, err)
	}
	n.Await(t, "STATUS=1 connections")
	br.Cmd.Process.Signal(syscall.SIGTERM)
	n.Await(t, "STOPPING=1")
}
