//go:build unix

package main_test

// BenchmarkBulk moves a file of 64 KiB lines through
// "tether connect | tether serve | tether connect --recv-only", the hub
// printing every line, beside "socat -b 65536" moving the same file over a
// unix socket, in the same run:
//
//	go test -run '^$' -bench Bulk -benchtime 2x ./cmd/tether/
//
// The file is 1 GiB (64 MiB with -short). Both receivers' output is checked
// byte for byte (a CRC and a count against the file's).

import (
	"bytes"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherkit/tether/internal/proctest"
	"github.com/tetherkit/tether/internal/testwait"
)

// bulkFile writes lines of 64 KiB (newline included) to a file of about
// size bytes and returns its path, length and CRC.
func bulkFile(b *testing.B, size int64) (string, int64, uint32) {
	b.Helper()
	f, err := os.CreateTemp("", "tether-bulk")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(f.Name()) })
	line := make([]byte, 64<<10)
	for i := range line {
		line[i] = 'a' + byte(i%26)
	}
	line[len(line)-1] = '\n'
	crc := crc32.NewIEEE()
	var n int64
	for n < size {
		line[0] = 'A' + byte(n/int64(len(line))%26) // every line a little different
		f.Write(line)
		crc.Write(line)
		n += int64(len(line))
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return f.Name(), n, crc.Sum32()
}

// sink reads a process's output, counting bytes and computing the CRC.
type sink struct {
	n    atomic.Int64
	crc  uint32
	done chan struct{}
}

func drainTo(r io.Reader, check bool) *sink {
	s := &sink{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 1<<20)
		for {
			k, err := r.Read(buf)
			if check {
				s.crc = crc32.Update(s.crc, crc32.IEEETable, buf[:k])
			}
			s.n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}()
	return s
}

// cpu is the user and system time of finished processes.
func cpu(cmds ...*exec.Cmd) time.Duration {
	var d time.Duration
	for _, c := range cmds {
		if c.ProcessState != nil {
			d += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		}
	}
	return d
}

// bulkTether moves the file through tether and returns the time and the
// processes' CPU time.
func bulkTether(b *testing.B, file string, size int64, want uint32) (time.Duration, time.Duration) {
	dir := b.TempDir()
	sock := filepath.Join(dir, "hub.sock")
	hub := exec.Command(bin, "serve", "--addr", sock)
	var hubErr proctest.Buffer
	hub.Stderr = &hubErr
	hubOut, _ := hub.StdoutPipe()
	if err := hub.Start(); err != nil {
		b.Fatal(err)
	}
	printed := drainTo(hubOut, false)
	testwait.For(b, "the hub to serve", testwait.Timeout, func() bool { return bytes.Contains([]byte(hubErr.String()), []byte("serving")) })
	recv := exec.Command(bin, "connect", "--addr", sock, "--recv-only")
	recvOut, _ := recv.StdoutPipe()
	if err := recv.Start(); err != nil {
		b.Fatal(err)
	}
	got := drainTo(recvOut, true)
	testwait.For(b, "the receiver in the room", testwait.Timeout, func() bool { return printed.n.Load() > 0 })
	in, err := os.Open(file)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	send := exec.Command(bin, "connect", "--addr", sock)
	send.Stdin = in
	start := time.Now()
	if out, err := send.CombinedOutput(); err != nil {
		b.Fatalf("tether sender: %v: %s", err, out)
	}
	testwait.For(b, "every byte at the tether receiver", 5*time.Minute, func() bool { return got.n.Load() >= size })
	lines := size / (64 << 10)
	testwait.For(b, "the hub to print every line", 5*time.Minute, func() bool { return printed.n.Load() >= size+lines*int64(len("#2: ")) })
	elapsed := time.Since(start)
	hub.Process.Signal(os.Interrupt)
	recv.Wait()
	hub.Wait()
	<-got.done
	if got.n.Load() != size || got.crc != want {
		b.Fatalf("tether delivered %d bytes with CRC %08x, want %d and %08x", got.n.Load(), got.crc, size, want)
	}
	return elapsed, cpu(hub, recv, send)
}

// bulkSocat moves the file with socat over a unix socket.
func bulkSocat(b *testing.B, file string, size int64, want uint32) (time.Duration, time.Duration) {
	dir := b.TempDir()
	sock := filepath.Join(dir, "s.sock")
	recv := exec.Command("socat", "-b", "65536", "-u", "UNIX-LISTEN:"+sock, "STDOUT")
	recvOut, _ := recv.StdoutPipe()
	if err := recv.Start(); err != nil {
		b.Fatal(err)
	}
	got := drainTo(recvOut, true)
	testwait.For(b, "socat to listen", testwait.Timeout, func() bool { _, err := os.Stat(sock); return err == nil })
	send := exec.Command("socat", "-b", "65536", "-u", "OPEN:"+file, "UNIX-CONNECT:"+sock)
	start := time.Now()
	if out, err := send.CombinedOutput(); err != nil {
		b.Fatalf("socat sender: %v: %s", err, out)
	}
	<-got.done
	elapsed := time.Since(start)
	recv.Wait()
	if got.n.Load() != size || got.crc != want {
		b.Fatalf("socat delivered %d bytes with CRC %08x, want %d and %08x", got.n.Load(), got.crc, size, want)
	}
	return elapsed, cpu(recv, send)
}

func BenchmarkBulk(b *testing.B) {
	if raceEnabled {
		b.Skip("the race detector's binaries measure the race detector")
	}
	if _, err := exec.LookPath("socat"); err != nil {
		b.Skip("socat is not installed (apt-get install socat)")
	}
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	file, n, crc := bulkFile(b, size)
	mine, mineCPU, theirs, theirCPU := alternate(b,
		func() (time.Duration, time.Duration) { return bulkTether(b, file, n, crc) },
		func() (time.Duration, time.Duration) { return bulkSocat(b, file, n, crc) })
	gib := float64(n*int64(b.N)) / (1 << 30)
	b.ReportMetric(float64(n*int64(b.N))/mine.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(n*int64(b.N))/theirs.Seconds()/1e6, "socat-MB/s")
	b.ReportMetric(theirs.Seconds()/mine.Seconds(), "x-socat")
	b.ReportMetric(mineCPU.Seconds()/gib, "cpu-s/GiB")
	b.ReportMetric(theirCPU.Seconds()/gib, "socat-cpu-s/GiB")
}

// alternate runs ours and theirs b.N times each, alternating which goes
// first so neither always gets the warmer machine, and sums the wall and
// CPU times each returns.
func alternate(b *testing.B, ours, theirs func() (wall, cpu time.Duration)) (ourWall, ourCPU, theirWall, theirCPU time.Duration) {
	runTheirs := func() {
		d, c := theirs()
		theirWall, theirCPU = theirWall+d, theirCPU+c
	}
	for i := range b.N {
		if i%2 == 0 {
			runTheirs()
		}
		d, c := ours()
		ourWall, ourCPU = ourWall+d, ourCPU+c
		if i%2 == 1 {
			runTheirs()
		}
	}
	return ourWall, ourCPU, theirWall, theirCPU
}
