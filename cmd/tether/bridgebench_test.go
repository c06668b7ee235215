//go:build unix

package main_test

// BenchmarkBridge measures "tether bridge" beside "socat -b 65536" doing the
// same job, in the same run, one after the other:
//
//	go test -run '^$' -bench Bridge -benchtime 2x ./cmd/tether/
//
//   - bulk: one connection carries 1 GiB (64 MiB with -short) from a client
//     into the bridge's front to a service that reads it all, unix to unix
//     and TCP to unix. Reported: MB/s, the bridge process's CPU seconds per
//     GiB, and the same for socat.
//   - echo: 1000 connections at once (100 with -short) each send 1 MiB
//     through the bridge to an echo service and read it back, byte-exact.
//     Reported: the time for all, and the bridge's peak resident memory.
//
// The client and the services are goroutines of the benchmark; only the
// bridge process is measured.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
)

// service is a unix socket the bridges carry connections to.
type service struct {
	path string
	got  atomic.Int64 // bytes read, by the drain service
}

// startService serves a unix socket: echo sends back what it reads (and
// half-closes after), else it reads and counts.
func startService(b *testing.B, echo bool) *service {
	b.Helper()
	s := &service{path: filepath.Join(shortDir(b), "svc.sock")}
	if echo {
		proctest.EchoUnix(b, s.path)
		return s
	}
	l, err := net.Listen("unix", s.path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 256<<10)
				for {
					n, err := c.Read(buf)
					s.got.Add(int64(n))
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func shortDir(b testing.TB) string {
	dir, err := os.MkdirTemp("", "tb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// relay is a running bridge process and where to reach it.
type relay struct {
	cmd     *exec.Cmd
	network string
	addr    string
}

var listeningOn = regexp.MustCompile(`from=(unix|tcp)://(\S+)`)

// startRelay starts tether bridge (or socat) from a front of the given
// network to the service.
func startRelay(b *testing.B, socat bool, network, back string) *relay {
	b.Helper()
	r := &relay{network: network}
	var stderr proctest.Buffer
	if socat {
		front := "UNIX-LISTEN:" + filepath.Join(shortDir(b), "front.sock") + ",fork,backlog=4096"
		r.addr = strings.TrimSuffix(strings.TrimPrefix(front, "UNIX-LISTEN:"), ",fork,backlog=4096")
		if network == "tcp" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			r.addr = l.Addr().String()
			l.Close()
			front = "TCP-LISTEN:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port) + ",bind=127.0.0.1,reuseaddr,fork,backlog=4096"
		}
		// -t: after one way ends, socat waits only 0.5 s by default for
		// the other before it closes both; under load that cuts replies.
		r.cmd = exec.Command("socat", "-b", "65536", "-t", "60", front, "UNIX-CONNECT:"+back)
	} else {
		front := "unix://" + filepath.Join(shortDir(b), "front.sock")
		if network == "tcp" {
			front = "tcp://127.0.0.1:0"
		}
		r.cmd = exec.Command(bin, "bridge", "--max-conns", "0", front, "unix://"+back)
	}
	r.cmd.Stderr = &stderr
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	testwait.For(b, "the relay to listen", testwait.Timeout, func() bool {
		if socat {
			c, err := net.Dial(network, r.addr)
			if err == nil {
				c.Close() // socat forks for it, connects to the service, and sees it end
			}
			return err == nil
		}
		m := listeningOn.FindStringSubmatch(stderr.String())
		if m != nil {
			r.addr = m[2]
		}
		return m != nil
	})
	return r
}

// stop ends the relay.
func (r *relay) stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	r.cmd.Wait()
}

// cpuTree is the CPU time a process and its descendants have used so far,
// those that already exited and were reaped included (socat forks one
// process per connection).
func cpuTree(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime is the
	// 12th of them, then stime, cutime, cstime.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	d := time.Duration(ticks) * time.Second / 100 // USER_HZ
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		kids, _ := os.ReadFile(t)
		for _, k := range strings.Fields(string(kids)) {
			if kid, err := strconv.Atoi(k); err == nil {
				d += cpuTree(kid)
			}
		}
	}
	return d
}

// peakRSS is a running process's peak resident memory in KiB.
func peakRSS(b *testing.B, pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// bulkThrough sends size bytes through a relay in one connection and
// returns the time until the service has them all, and the CPU time the
// relay used meanwhile (its start excluded).
func bulkThrough(b *testing.B, socat bool, network string, size int64) (time.Duration, time.Duration) {
	svc := startService(b, false)
	r := startRelay(b, socat, network, svc.path)
	c, err := net.Dial(network, r.addr)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	cpu0 := cpuTree(r.cmd.Process.Pid)
	start := time.Now()
	for sent := int64(0); sent < size; sent += int64(len(chunk)) {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	testwait.For(b, "every byte at the service", 5*time.Minute, func() bool { return svc.got.Load() >= size })
	elapsed := time.Since(start)
	used := cpuTree(r.cmd.Process.Pid) - cpu0
	c.Close()
	r.stop()
	if got := svc.got.Load(); got != size {
		b.Fatalf("the service got %d bytes, want %d", got, size)
	}
	return elapsed, used
}

// echoThrough runs conns connections at once through a relay to an echo
// service, each sending per bytes and checking them back. It returns the
// time for all and the relay's peak resident memory in KiB.
func echoThrough(b *testing.B, socat bool, conns, per int) (time.Duration, int) {
	svc := startService(b, true)
	r := startRelay(b, socat, "unix", svc.path)
	payload := make([]byte, per)
	for i := range payload {
		payload[i] = byte(i*131 + i>>8)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("unix", r.addr, time.Minute)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Minute))
			go func() {
				c.Write(payload)
				c.(*net.UnixConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, payload) {
				errs <- fmt.Errorf("echo through %s: %d bytes back (%v), want %d byte-exact", r.cmd.Args[0], len(got), err, len(payload))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	rss := peakRSS(b, r.cmd.Process.Pid)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	r.stop()
	return elapsed, rss
}

func BenchmarkBridge(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector's binaries measure the race detector")
	}
	if _, err := exec.LookPath("socat"); err != nil {
		b.Skip("socat is not installed (apt-get install socat)")
	}
	size := int64(1 << 30)
	conns := 1000
	if testing.Short() {
		size, conns = 64<<20, 100
	}
	for _, network := range []string{"unix", "tcp"} {
		b.Run("bulk/"+network, func(b *testing.B) {
			mine, mineCPU, theirs, theirCPU := alternate(b,
				func() (time.Duration, time.Duration) { return bulkThrough(b, false, network, size) },
				func() (time.Duration, time.Duration) { return bulkThrough(b, true, network, size) })
			total := float64(size * int64(b.N))
			b.ReportMetric(total/mine.Seconds()/1e6, "MB/s")
			b.ReportMetric(total/theirs.Seconds()/1e6, "socat-MB/s")
			b.ReportMetric(theirs.Seconds()/mine.Seconds(), "x-socat")
			b.ReportMetric(mineCPU.Seconds()/(total/(1<<30)), "cpu-s/GiB")
			b.ReportMetric(theirCPU.Seconds()/(total/(1<<30)), "socat-cpu-s/GiB")
		})
	}
	b.Run(fmt.Sprintf("echo/%dx1MiB", conns), func(b *testing.B) {
		var mine, theirs time.Duration
		peak := 0
		for range b.N {
			d, rss := echoThrough(b, false, conns, 1<<20)
			mine += d
			peak = max(peak, rss)
			d, _ = echoThrough(b, true, conns, 1<<20)
			theirs += d
		}
		b.ReportMetric(mine.Seconds()/float64(b.N), "s/round")
		b.ReportMetric(theirs.Seconds()/float64(b.N), "socat-s/round")
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	})
}
