//go:build unix

package main_test

// End-to-end benchmarks of the command line, as a user runs it: a hub
// process and one process per client, messages through their standard
// input and output pipes, the hub printing every message (its default).
// Each runs the tether binary and, in the same run on the same machine, the
// hand-written CLI of the same shape (hand_test.go), and reports both
// figures and the ratio x-hand (above 1: tether is faster). Run with
//
//	go test -run '^$' -bench CLI -benchtime 3x ./cmd/tether/
//
// Each iteration runs every workload once for each implementation, the
// hand-written one first on odd iterations and second on even ones.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
)

// impl is one program of the CLI's shape.
type impl struct {
	name string
	cmd  func(role, network, addr, codec string) *exec.Cmd // role: serve, connect, recv
}

var tetherCLI = impl{"tether", func(role, network, addr, codec string) *exec.Cmd {
	args := []string{role, "--addr", network + "://" + addr, "--codec", codec}
	switch role {
	case "recv":
		args[0] = "connect"
		args = append(args, "--recv-only")
	case "serve":
		args = append(args, "--max-frame", "2MiB")
	}
	return exec.Command(bin, args...)
}}

var handCLI = impl{"hand", func(role, network, addr, codec string) *exec.Cmd {
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "TETHER_HAND="+role, "TETHER_HAND_NET="+network, "TETHER_HAND_ADDR="+addr, "TETHER_HAND_CODEC="+codec)
	return c
}}

// counter counts the lines a process prints, and the hub's "connected"
// lines, without parsing each line.
type counter struct {
	lines, joins atomic.Int64
	done         chan struct{}
}

func count(r io.Reader) *counter {
	c := &counter{done: make(chan struct{})}
	word := []byte("connected")
	edge := len(word) - 1 // bytes kept each side of a read's boundary: only a match across it fits
	go func() {
		defer close(c.done)
		buf := make([]byte, 256<<10)
		var tail, across []byte
		for {
			n, err := r.Read(buf)
			chunk := buf[:n]
			c.lines.Add(int64(bytes.Count(chunk, []byte{'\n'})))
			across = append(append(across[:0], tail...), chunk[:min(n, edge)]...)
			c.joins.Add(int64(bytes.Count(across, word) + bytes.Count(chunk, word)))
			if n >= edge {
				tail = append(tail[:0], chunk[n-edge:]...)
			} else {
				tail = append(tail, chunk...)
				tail = tail[max(0, len(tail)-edge):]
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// cliRun is one workload's processes.
type cliRun struct {
	b       *testing.B
	im      impl
	network string
	addr    string
	codec   string
	hubOut  *counter
	procs   []*exec.Cmd
}

var servingRE = regexp.MustCompile(`serving \w+://(\S+)`)

// startHub starts the implementation's hub and waits until it serves.
func startBenchHub(b *testing.B, im impl, network, codec string) *cliRun {
	b.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		dir, err := os.MkdirTemp("", "tb")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		addr = filepath.Join(dir, "hub.sock")
	}
	r := &cliRun{b: b, im: im, network: network, codec: codec}
	hub := im.cmd("serve", network, addr, codec)
	var errOut proctest.Buffer
	hub.Stderr = &errOut
	out, err := hub.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := hub.Start(); err != nil {
		b.Fatal(err)
	}
	r.procs = append(r.procs, hub)
	r.hubOut = count(out)
	testwait.For(b, im.name+" hub to serve", testwait.Timeout, func() bool { return servingRE.MatchString(errOut.String()) })
	r.addr = servingRE.FindStringSubmatch(errOut.String())[1]
	return r
}

// client starts a client; it returns its standard input (nil for a
// receiver) and a counter of what it prints.
func (r *cliRun) client(role string) (io.WriteCloser, *counter, *exec.Cmd) {
	r.b.Helper()
	c := r.im.cmd(role, r.network, r.addr, r.codec)
	var in io.WriteCloser
	var err error
	if role != "recv" {
		if in, err = c.StdinPipe(); err != nil {
			r.b.Fatal(err)
		}
	}
	out, err := c.StdoutPipe()
	if err != nil {
		r.b.Fatal(err)
	}
	c.Stderr = io.Discard // a client that fails shows as a benchmark that times out waiting for it
	if err := c.Start(); err != nil {
		r.b.Fatal(err)
	}
	r.procs = append(r.procs, c)
	return in, count(out), c
}

func (r *cliRun) waitJoins(n int) {
	r.b.Helper()
	testwait.For(r.b, fmt.Sprintf("%d clients in the %s hub's room", n, r.im.name), testwait.Timeout, func() bool { return r.hubOut.joins.Load() >= int64(n) })
}

func (r *cliRun) stop() {
	slices.Reverse(r.procs) // clients first
	for _, p := range r.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// block returns k lines of size bytes each (newline included).
func block(size, k int) []byte {
	line := append(bytes.Repeat([]byte("m"), size-1), '\n')
	return bytes.Repeat(line, k)
}

// feed writes n lines of size bytes to w.
func feed(w io.Writer, size, n int) error {
	const k = 1024
	blk := block(size, k)
	for sent := 0; sent < n; sent += k {
		chunk := blk
		if n-sent < k {
			chunk = blk[:(n-sent)*size]
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

const benchWait = 20 * time.Second

// p2p: one sender, one receiver, through the hub; messages per second.
func p2p(b *testing.B, im impl, network, codec string, size, n int) time.Duration {
	r := startBenchHub(b, im, network, codec)
	defer r.stop()
	_, recv, _ := r.client("recv")
	r.waitJoins(1)
	in, _, _ := r.client("connect")
	r.waitJoins(2)
	start := time.Now()
	go func() { feed(in, size, n); in.Close() }()
	testwait.For(b, fmt.Sprintf("%d messages at the %s receiver", n, im.name), benchWait, func() bool { return recv.lines.Load() >= int64(n) })
	testwait.For(b, fmt.Sprintf("the %s hub to print %d messages", im.name, n), benchWait, func() bool { return r.hubOut.lines.Load() >= int64(n+2) })
	return time.Since(start)
}

// fanOut: c clients each send m messages, every other client receives each.
func fanOut(b *testing.B, im impl, network, codec string, c, m int) time.Duration {
	r := startBenchHub(b, im, network, codec)
	defer r.stop()
	var ins []io.WriteCloser
	var outs []*counter
	for range c {
		in, out, _ := r.client("connect")
		ins, outs = append(ins, in), append(outs, out)
	}
	r.waitJoins(c)
	start := time.Now()
	for _, in := range ins {
		go feed(in, 64, m) // standard input stays open: a client that ends its input leaves the room
	}
	want := int64(m * (c - 1))
	counts := func() string {
		var s []string
		for _, o := range outs {
			s = append(s, fmt.Sprint(o.lines.Load()))
		}
		return strings.Join(s, " ")
	}
	for i, out := range outs {
		testwait.For(b, fmt.Sprintf("%d deliveries at %s client %d (have %s; hub printed %d lines)", want, im.name, i, counts(), r.hubOut.lines.Load()), benchWait, func() bool { return out.lines.Load() >= want })
	}
	testwait.For(b, fmt.Sprintf("the %s hub to print %d messages", im.name, c*m), benchWait, func() bool { return r.hubOut.lines.Load() >= int64(c*m+c) })
	elapsed := time.Since(start)
	for _, in := range ins {
		in.Close()
	}
	return elapsed
}

// rttSetup is a hub with client A, and client B echoing every line back.
type rttSetup struct {
	r    *cliRun
	aIn  io.WriteCloser
	aOut *bufio.Reader
}

func newRTT(b *testing.B, im impl, network, codec string) *rttSetup {
	r := startBenchHub(b, im, network, codec)
	aIn, aOut := r.clientPiped()
	r.waitJoins(1)
	bIn, bOut := r.clientPiped()
	r.waitJoins(2)
	go func() { // B echoes every line
		br := bufio.NewReader(bOut)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if _, err := bIn.Write(line); err != nil {
				return
			}
		}
	}()
	return &rttSetup{r: r, aIn: aIn, aOut: bufio.NewReader(aOut)}
}

// ping sends one message from A and waits for its echo.
func (s *rttSetup) ping(b *testing.B, msg []byte) time.Duration {
	t0 := time.Now()
	if _, err := s.aIn.Write(msg); err != nil {
		b.Fatal(err)
	}
	if _, err := s.aOut.ReadSlice('\n'); err != nil {
		b.Fatalf("%s round trip: %v", s.r.im.name, err)
	}
	return time.Since(t0)
}

// roundTrips runs both implementations at once and alternates single pings
// between them, so that each pair of samples sees the same machine.
func roundTrips(b *testing.B, network, codec string, k int) (mine, hand []time.Duration) {
	t, h := newRTT(b, tetherCLI, network, codec), newRTT(b, handCLI, network, codec)
	defer t.r.stop()
	defer h.r.stop()
	msg := block(64, 1)
	for i := range k {
		if i%2 == 0 {
			mine = append(mine, t.ping(b, msg))
			hand = append(hand, h.ping(b, msg))
		} else {
			hand = append(hand, h.ping(b, msg))
			mine = append(mine, t.ping(b, msg))
		}
	}
	return mine, hand
}

// clientPiped starts a client whose standard input and output the
// benchmark uses directly.
func (r *cliRun) clientPiped() (io.WriteCloser, io.Reader) {
	r.b.Helper()
	c := r.im.cmd("connect", r.network, r.addr, r.codec)
	in, err := c.StdinPipe()
	if err != nil {
		r.b.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		r.b.Fatal(err)
	}
	c.Stderr = io.Discard // a client that fails shows as a benchmark that times out waiting for it
	if err := c.Start(); err != nil {
		r.b.Fatal(err)
	}
	r.procs = append(r.procs, c)
	return in, out
}

func quantile(d []time.Duration, q float64) float64 {
	return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3
}

// BenchmarkCLI compares tether's serve and connect with the hand-written
// CLI, end to end, over unix and TCP with both codecs.
func BenchmarkCLI(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector's binaries measure the race detector")
	}
	scale := 1
	if testing.Short() {
		scale = 20 // a smoke run
	}
	for _, network := range []string{"unix", "tcp"} {
		for _, codec := range []string{"line", "length"} {
			for _, w := range []struct {
				name string
				run  func(b *testing.B, im impl) time.Duration
				n    int // deliveries per run
			}{
				{"p2p-64B", func(b *testing.B, im impl) time.Duration { return p2p(b, im, network, codec, 64, 1_000_000/scale) }, 1_000_000 / scale},
				{"p2p-1KiB", func(b *testing.B, im impl) time.Duration { return p2p(b, im, network, codec, 1024, 300_000/scale) }, 300_000 / scale},
				{"fanout-C10", func(b *testing.B, im impl) time.Duration { return fanOut(b, im, network, codec, 10, 20_000/scale) }, 10 * 9 * 20_000 / scale},
				{"fanout-C100", func(b *testing.B, im impl) time.Duration { return fanOut(b, im, network, codec, 100, 200/scale) }, 100 * 99 * (200 / scale)},
			} {
				b.Run(fmt.Sprintf("%s/%s/%s", w.name, network, codec), func(b *testing.B) {
					var mine, hand time.Duration
					for i := range b.N {
						if i%2 == 0 {
							hand += w.run(b, handCLI)
							mine += w.run(b, tetherCLI)
						} else {
							mine += w.run(b, tetherCLI)
							hand += w.run(b, handCLI)
						}
					}
					total := float64(w.n * b.N)
					b.ReportMetric(total/mine.Seconds(), "msgs/s")
					b.ReportMetric(total/hand.Seconds(), "hand-msgs/s")
					b.ReportMetric(hand.Seconds()/mine.Seconds(), "x-hand")
				})
			}
			b.Run(fmt.Sprintf("rtt-64B/%s/%s", network, codec), func(b *testing.B) {
				var mine, hand []time.Duration
				for range b.N {
					m, h := roundTrips(b, network, codec, 2000/scale)
					mine, hand = append(mine, m...), append(hand, h...)
				}
				sort.Slice(mine, func(i, j int) bool { return mine[i] < mine[j] })
				sort.Slice(hand, func(i, j int) bool { return hand[i] < hand[j] })
				b.ReportMetric(quantile(mine, 0.5), "p50-us")
				b.ReportMetric(quantile(mine, 0.99), "p99-us")
				b.ReportMetric(quantile(hand, 0.5), "hand-p50-us")
				b.ReportMetric(quantile(hand, 0.99), "hand-p99-us")
				b.ReportMetric(quantile(hand, 0.5)/quantile(mine, 0.5), "x-hand-p50")
			})
		}
	}
}
