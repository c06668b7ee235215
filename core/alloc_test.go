package core_test

import (
	"bytes"
	"testing"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/codecs/line"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/transports/tcp"
	"github.com/tetherkit/tether/transports/unix"
)

// loopReader replays one encoded frame forever.
type loopReader struct {
	frame []byte
	off   int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.frame[r.off:])
		n += c
		r.off = (r.off + c) % len(r.frame)
	}
	return n, nil
}

func TestZeroAllocCodecs(t *testing.T) {
	msg := bytes.Repeat([]byte("m"), 64)
	for _, c := range []core.Codec{line.Codec{}, length.Codec{}} {
		dst := make([]byte, 0, 256)
		if a := testing.AllocsPerRun(1000, func() { dst, _ = c.AppendFrame(dst[:0], msg) }); a != 0 {
			t.Errorf("%s: AppendFrame allocates %v per message, want 0", c.Name(), a)
		}
		fr := c.NewReader(&loopReader{frame: dst}, 0)
		fr.ReadFrame() // the first read allocates the buffer
		if a := testing.AllocsPerRun(1000, func() {
			if m, err := fr.ReadFrame(); err != nil || len(m) != 64 {
				t.Fatalf("ReadFrame: %q, %v", m, err)
			}
		}); a != 0 {
			t.Errorf("%s: ReadFrame allocates %v per message, want 0", c.Name(), a)
		}
	}
}

// TestZeroAllocHubPath counts every allocation in the process (sender,
// hub, receiver) per message relayed, once warm.
func TestZeroAllocHubPath(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items on purpose: allocation counts mean nothing")
	}
	for _, su := range []setup{{"unix/length", unix.Transport{}, length.Codec{}}, {"tcp/line", tcp.Transport{}, line.Codec{}}} {
		t.Run(su.name, func(t *testing.T) {
			srv := &core.Server{}
			addr := serve(t, srv, su.transport, su.codec)
			a := dial(t, su.transport, addr, su.codec)
			b := dial(t, su.transport, addr, su.codec)
			waitPeers(t, srv, 2)
			msg := bytes.Repeat([]byte("z"), 64)
			step := func() {
				if err := a.Send(msg); err != nil {
					t.Fatal(err)
				}
				if m, err := b.Receive(); err != nil || len(m) != 64 {
					t.Fatalf("Receive: %q, %v", m, err)
				}
			}
			for range 1000 {
				step()
			}
			allocs := testing.AllocsPerRun(5000, step)
			t.Logf("%s: %.3f allocations per message relayed, whole process", su.name, allocs)
			if allocs > 0.05 {
				t.Errorf("%.3f allocations per message relayed, want 0 in the steady state", allocs)
			}
		})
	}
}
