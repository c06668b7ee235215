package core_test

// Benchmarks. Each reports tether's figure and, measured in the same run on
// the same sockets, the figure of hand-written code a good engineer would
// write instead (plain net and bufio, no framework), and the ratio
// ("x-base", above 1 is faster than the baseline). Absolute figures on a
// shared machine drift by tens of percent between runs; the ratio is the
// figure to read.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/internal/testwait"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
)

func benchTransports() []core.Transport { return []core.Transport{unix.Transport{}, tcp.Transport{}} }
func benchCodecs() []core.Codec         { return []core.Codec{line.Codec{}, length.Codec{}} }

// connPair returns two ends of one connection over tr.
func connPair(b *testing.B, tr core.Transport) (net.Conn, net.Conn) {
	b.Helper()
	l, err := tr.Listen(context.Background(), listenAddrB(b, tr))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); ch <- c }()
	d, err := tr.Dial(context.Background(), l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	a := testwait.Recv(b, "the accepted connection", testwait.Timeout, ch)
	b.Cleanup(func() { d.Close(); a.Close() })
	return d, a
}

func listenAddrB(b *testing.B, tr core.Transport) string {
	if tr.Name() == "unix" {
		return fmt.Sprintf("/tmp/tether-bench-%d-%d.sock", time.Now().UnixNano(), b.N)
	}
	return "127.0.0.1:0"
}

func benchMsg(size int) []byte { return bytes.Repeat([]byte("m"), size) }

// report adds tether's and the baseline's rates and their ratio.
func report(b *testing.B, n int, bytesPer int, mine, base time.Duration) {
	mps, bps := float64(n)/mine.Seconds(), float64(n)/base.Seconds()
	b.ReportMetric(mps, "msg/s")
	b.ReportMetric(bps, "base-msg/s")
	if bytesPer > 0 {
		b.ReportMetric(mps*float64(bytesPer)/1e6, "MB/s")
		b.ReportMetric(bps*float64(bytesPer)/1e6, "base-MB/s")
	}
	b.ReportMetric(mps/bps, "x-base")
}

// BenchmarkPointToPoint: one sender, one receiver, over one connection.
// tether: Client.Queue/Flush and Client.Receive with the codec. Baseline:
// bufio.Writer and bufio.Reader with the same framing written by hand.
func BenchmarkPointToPoint(b *testing.B) {
	for _, tr := range benchTransports() {
		for _, c := range benchCodecs() {
			for _, size := range []int{16, 64, 1024, 64 << 10} {
				b.Run(fmt.Sprintf("%s/%s/%dB", tr.Name(), c.Name(), size), func(b *testing.B) {
					msg := benchMsg(size)
					b.ReportAllocs()
					mine := p2pTether(b, tr, c, msg)
					base := p2pBaseline(b, tr, c.Name(), msg)
					report(b, b.N, size, mine, base)
				})
			}
		}
	}
}

func p2pTether(b *testing.B, tr core.Transport, c core.Codec, msg []byte) time.Duration {
	x, y := connPair(b, tr)
	tx, rx := core.NewClient(x, c, 0), core.NewClient(y, c, 0)
	start := time.Now()
	go func() {
		for range b.N {
			tx.Queue(msg)
		}
		tx.Flush()
	}()
	for range b.N {
		if _, err := rx.Receive(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

func p2pBaseline(b *testing.B, tr core.Transport, codec string, msg []byte) time.Duration {
	x, y := connPair(b, tr)
	w := bufio.NewWriterSize(x, 64<<10)
	r := bufio.NewReaderSize(y, 128<<10)
	buf := make([]byte, len(msg))
	start := time.Now()
	go func() {
		var head [4]byte
		for range b.N {
			if codec == "length" {
				binary.BigEndian.PutUint32(head[:], uint32(len(msg)))
				w.Write(head[:])
				w.Write(msg)
			} else {
				w.Write(msg)
				w.WriteByte('\n')
			}
		}
		w.Flush()
	}()
	var head [4]byte
	for range b.N {
		if codec == "length" {
			io.ReadFull(r, head[:])
			if _, err := io.ReadFull(r, buf[:binary.BigEndian.Uint32(head[:])]); err != nil {
				b.Fatal(err)
			}
		} else if _, err := r.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkRoundTrip: a 64-byte message from A through the hub to B and
// back through the hub to A, one at a time; p50 and p99 in microseconds.
// Baseline: the same through the hand-written hub below.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tr := range benchTransports() {
		b.Run(tr.Name(), func(b *testing.B) {
			msg := benchMsg(64)
			mine := roundTrips(b, tr, msg, false)
			base := roundTrips(b, tr, msg, true)
			p := func(d []time.Duration, q float64) float64 {
				return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3
			}
			b.ReportMetric(p(mine, 0.5), "p50-us")
			b.ReportMetric(p(mine, 0.99), "p99-us")
			b.ReportMetric(p(base, 0.5), "base-p50-us")
			b.ReportMetric(p(base, 0.99), "base-p99-us")
			b.ReportMetric(p(base, 0.5)/p(mine, 0.5), "x-base-p50")
		})
	}
}

func roundTrips(b *testing.B, tr core.Transport, msg []byte, baseline bool) []time.Duration {
	addr := startBenchHub(b, tr, baseline)
	a := benchDial(b, tr, addr)
	z := benchDial(b, tr, addr)
	waitHub(b, a, z)
	go func() { // B echoes
		for {
			m, err := z.Receive()
			if err != nil || z.Send(m) != nil {
				return
			}
		}
	}()
	d := make([]time.Duration, b.N)
	for i := range b.N {
		start := time.Now()
		if err := a.Send(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := a.Receive(); err != nil {
			b.Fatal(err)
		}
		d[i] = time.Since(start)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

// waitHub has each client send a hello until the other hears it, so both
// are in the room.
func waitHub(b *testing.B, cls ...*core.Client) {
	for i, c := range cls {
		other := cls[(i+1)%len(cls)]
		for {
			c.Send([]byte("hello"))
			other.Conn().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := other.Receive()
			other.Conn().SetReadDeadline(time.Time{})
			if err == nil {
				break
			}
			// A timed-out reader of the built-in codecs can go on.
		}
	}
	// Drain duplicate hellos.
	for _, c := range cls {
		for {
			c.Conn().SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := c.Receive(); err != nil {
				break
			}
		}
		c.Conn().SetReadDeadline(time.Time{})
	}
}

func benchDial(b *testing.B, tr core.Transport, addr string) *core.Client {
	c, err := core.Dial(context.Background(), tr, addr, length.Codec{}, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// startBenchHub starts tether's hub, or the hand-written one, with the
// length codec, and returns its address.
func startBenchHub(b *testing.B, tr core.Transport, baseline bool) string {
	l, err := tr.Listen(context.Background(), listenAddrB(b, tr))
	if err != nil {
		b.Fatal(err)
	}
	if baseline {
		h := &handHub{}
		go h.serve(l)
		b.Cleanup(func() { l.Close(); h.close() })
	} else {
		srv := &core.Server{}
		joined.Store(l.Addr().String(), func() int { return len(srv.Peers()) })
		go srv.Serve(l, length.Codec{})
		b.Cleanup(func() { srv.Close() })
	}
	return l.Addr().String()
}

// BenchmarkFanOut: C clients each send messages, every other client
// receives each: deliveries per second through the hub, against the
// hand-written hub. Each iteration runs both hubs alternately over several
// rounds (at least three, and enough that each hub's rounds take about a
// second at C=1000), so that one slow start cannot decide the ratio.
func BenchmarkFanOut(b *testing.B) {
	for _, clients := range []int{2, 10, 100, 1000} {
		b.Run(fmt.Sprintf("unix/C=%d", clients), func(b *testing.B) {
			per := max(5, b.N/(clients*(clients-1))) // a few rounds at least: one is all warm-up
			rounds := 3
			var mine, base time.Duration
			for i := range rounds {
				if i%2 == 0 {
					base += fanOut(b, unix.Transport{}, clients, per, true)
					mine += fanOut(b, unix.Transport{}, clients, per, false)
				} else {
					mine += fanOut(b, unix.Transport{}, clients, per, false)
					base += fanOut(b, unix.Transport{}, clients, per, true)
				}
			}
			deliveries := float64(rounds * per * clients * (clients - 1))
			b.ReportMetric(deliveries/mine.Seconds(), "deliveries/s")
			b.ReportMetric(deliveries/base.Seconds(), "base-deliveries/s")
			b.ReportMetric(base.Seconds()/mine.Seconds(), "x-base")
		})
	}
}

func fanOut(b *testing.B, tr core.Transport, clients, per int, baseline bool) time.Duration {
	addr := startBenchHub(b, tr, baseline)
	cls := make([]*core.Client, clients)
	for i := range cls {
		cls[i] = benchDial(b, tr, addr)
	}
	// Everyone in the room: one ready message from each, counted by all.
	msg := benchMsg(64)
	var wg sync.WaitGroup
	ready := make(chan struct{})
	for _, c := range cls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ready
			for range per {
				c.Queue(msg)
			}
			c.Flush()
		}()
	}
	testwait.For(b, "every client in the room", testwait.Timeout, func() bool { return hubPeers(addr) >= clients })
	var rwg sync.WaitGroup
	start := time.Now()
	for _, c := range cls {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for range per * (clients - 1) {
				if _, err := c.Receive(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	close(ready)
	wg.Wait()
	rwg.Wait()
	return time.Since(start)
}

// hubPeers is set by the hubs the benchmarks start: how many clients joined.
var joined sync.Map // addr -> func() int

func hubPeers(addr string) int {
	if f, ok := joined.Load(addr); ok {
		return f.(func() int)()
	}
	return 0
}

// handHub is the broadcast hub a good engineer writes by hand: one reader
// goroutine per client, one writer goroutine per client with a buffered
// channel and a bufio.Writer flushed when the channel is empty; each
// message copied once and shared.
type handHub struct {
	mu      sync.Mutex
	clients map[*handClient]struct{}
}

type handClient struct {
	conn net.Conn
	out  chan []byte
}

func (h *handHub) serve(l net.Listener) {
	h.clients = map[*handClient]struct{}{}
	joined.Store(l.Addr().String(), func() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.clients) })
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		hc := &handClient{conn: c, out: make(chan []byte, 1024)}
		h.mu.Lock()
		h.clients[hc] = struct{}{}
		h.mu.Unlock()
		go h.read(hc)
		go hc.write()
	}
}

func (h *handHub) read(hc *handClient) {
	r := bufio.NewReaderSize(hc.conn, 64<<10)
	var head [4]byte
	var others []*handClient
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			break
		}
		frame := make([]byte, 4+binary.BigEndian.Uint32(head[:]))
		copy(frame, head[:])
		if _, err := io.ReadFull(r, frame[4:]); err != nil {
			break
		}
		others = others[:0]
		h.mu.Lock()
		for other := range h.clients {
			if other != hc {
				others = append(others, other)
			}
		}
		h.mu.Unlock()
		for _, other := range others {
			other.out <- frame
		}
	}
	h.mu.Lock()
	delete(h.clients, hc)
	h.mu.Unlock()
	close(hc.out)
}

func (hc *handClient) write() {
	w := bufio.NewWriterSize(hc.conn, 64<<10)
	for f := range hc.out {
		w.Write(f)
		if len(hc.out) == 0 {
			if w.Flush() != nil {
				break
			}
		}
	}
	hc.conn.Close()
}

func (h *handHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		c.conn.Close()
	}
}
