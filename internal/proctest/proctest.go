// Package proctest runs the tether binary as a real process in tests: start
// it, feed its standard input, watch its output, wait for it to exit.
package proctest

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/testwait"
)

// Buffer is a goroutine-safe buffer for a process's output.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a running process.
type Proc struct {
	Cmd    *exec.Cmd
	Stdout *Buffer
	Stderr *Buffer
	Stdin  io.WriteCloser
	done   chan struct{}
}

// Start starts bin with args and extra environment; the process is killed
// when the test ends, and its output logged if the test failed.
func Start(t testing.TB, bin string, env []string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return StartCmd(t, cmd)
}

// StartCmd starts a prepared command (its environment, extra files) the way
// Start does; the caller closes its own copies of the extra files.
func StartCmd(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	args := cmd.Args
	p := &Proc{Cmd: cmd, Stdout: &Buffer{}, Stderr: &Buffer{}, done: make(chan struct{})}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Stdout, p.Stderr
	in, err := p.Cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.Stdin = in
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%v\nstdout:\n%s\nstderr:\n%s", args, p.Stdout, p.Stderr)
		}
	})
	return p
}

// Wait waits up to timeout for the process to exit and returns its exit code.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%v still running after %v", p.Cmd.Args, timeout)
	}
	return -1
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitFor polls cond every few milliseconds until it holds, failing the test
// after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testwait.For(t, what, timeout, cond)
}

// Run runs bin to completion with stdin and returns its output and exit code.
func Run(t testing.TB, bin, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%v timed out", args)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// CountLines returns the number of complete lines in s.
func CountLines(s string) int { return strings.Count(s, "\n") }
