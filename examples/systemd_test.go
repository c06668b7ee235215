//go:build linux

package examples_test

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
)

// unit is what the tests need from a .socket and .service pair.
type unit struct {
	listen, fdname string
	exec           []string
}

// readUnit reads examples/systemd/NAME.socket and NAME.service.
func readUnit(t *testing.T, name string) unit {
	t.Helper()
	var u unit
	for _, file := range []string{name + ".socket", name + ".service"} {
		f, err := os.Open(filepath.Join("systemd", file))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			key, value, _ := strings.Cut(sc.Text(), "=")
			switch key {
			case "ListenStream":
				u.listen = value
			case "FileDescriptorName":
				u.fdname = value
			case "ExecStart":
				u.exec = strings.Fields(value)
			}
		}
		f.Close()
	}
	if u.listen == "" || u.fdname == "" || len(u.exec) == 0 || u.exec[0] != "/usr/local/bin/tether" {
		t.Fatalf("examples/systemd/%s.{socket,service}: want ListenStream, FileDescriptorName and ExecStart=/usr/local/bin/tether …, got %+v", name, u)
	}
	return u
}

// activate runs a unit's command the way systemd would, with
// systemd-socket-activate: it listens on a unix socket in the unit's place,
// starts the command at the first connection and passes it the socket
// under the unit's name. It returns the socket's path.
func activate(t *testing.T, bin string, u unit, replace map[string]string) (string, *proctest.NotifySocket) {
	t.Helper()
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate is not installed (Debian: apt-get install systemd); .ci/run installs it")
	}
	dir := shortTemp(t)
	path := filepath.Join(dir, "s.sock")
	n := proctest.ListenNotify(t, filepath.Join(dir, "n.sock"))
	args := []string{"-l", path, "--fdname=" + u.fdname, "-E", "NOTIFY_SOCKET=" + n.Path, bin}
	for _, a := range u.exec[1:] {
		for from, to := range replace {
			a = strings.ReplaceAll(a, from, to)
		}
		args = append(args, a)
	}
	cmd := exec.Command(sa, args...)
	logs := &proctest.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%v:\n%s", args, logs.String())
		}
	})
	// The socket file appears at bind, before listen: a dial in between is
	// refused. systemd-socket-activate says so once it listens.
	testwait.For(t, "systemd-socket-activate to say it listens", 10*time.Second, func() bool {
		return strings.Contains(logs.String(), "Listening on "+path)
	})
	return path, n
}

// TestSystemdUnits runs the example units' commands under
// systemd-socket-activate: the hub relays between two clients and says
// READY=1; the bridge carries bytes to its target; the vsock hub's command
// line is valid (served here on a unix socket: a test may not dial vsock).
func TestSystemdUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tether")
	}
	bin := buildTether(t)

	t.Run("hub", func(t *testing.T) {
		u := readUnit(t, "tether-hub")
		if u.listen != "/run/tether/hub.sock" {
			t.Errorf("tether-hub.socket listens on %q", u.listen)
		}
		path, n := activate(t, bin, u, nil)
		a := dialLine(t, path) // starts the hub
		n.Await(t, "READY=1")
		b := dialLine(t, path)
		n.Await(t, "STATUS=2 peers")
		b.Write([]byte("through an activated hub\n"))
		if got := a.line(t); got != "through an activated hub\n" {
			t.Errorf("relayed: %q", got)
		}
	})

	t.Run("bridge", func(t *testing.T) {
		u := readUnit(t, "tether-bridge")
		echo, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer echo.Close()
		go func() {
			for {
				c, err := echo.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		path, n := activate(t, bin, u, map[string]string{"127.0.0.1:5432": echo.Addr().String()})
		c := dialLine(t, path)
		n.Await(t, "READY=1")
		c.Write([]byte("to the database and back\n"))
		if got := c.line(t); got != "to the database and back\n" {
			t.Errorf("through the bridge: %q", got)
		}
	})

	t.Run("vsock", func(t *testing.T) {
		u := readUnit(t, "tether-vsock")
		if u.listen != "vsock::5000" {
			t.Errorf("tether-vsock.socket listens on %q", u.listen)
		}
		path, n := activate(t, bin, u, nil)
		a := dialLine(t, path)
		n.Await(t, "READY=1")
		b := dialLine(t, path)
		n.Await(t, "STATUS=2 peers")
		b.Write([]byte("hello\n"))
		if got := a.line(t); got != "hello\n" {
			t.Errorf("relayed: %q", got)
		}
	})
}

// lineConn reads a connection line by line.
type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, path string) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{c, bufio.NewReader(c)}
}

func (c *lineConn) line(t *testing.T) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("waiting for a line: %v", err)
	}
	return s
}

// buildTether builds the tether command into a temporary directory.
func buildTether(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tether")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "../cmd/tether")...).CombinedOutput(); err != nil {
		t.Fatalf("building tether: %v\n%s", err, out)
	}
	return bin
}

// shortTemp is a temporary directory with a short path, for unix sockets.
func shortTemp(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
