package federation_test

// BenchmarkFederatedRoom compares one room of C clients in one hub with
// the same room spread over two hubs federated through an in-process NATS
// server, in the same run:
//
//	go test -run '^$' -bench Federated -count 3 ./federation/
//
// fanout: every client sends 64-byte messages, in rounds of 2,000 each,
// and receives everyone else's (deliveries per second, every delivery
// counted). rtt: one client
// sends, another answers, p50 and p99 of the round trip.

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/core"
)

// benchRoom returns c clients of one room: all on one hub with no
// federation at all, or alternating between two federated hubs.
func benchRoom(b *testing.B, hubs, c int) []*core.Client {
	var hs []*hub
	if hubs == 1 {
		hs = append(hs, plainHub(b, length.Codec{}, "main"))
	} else {
		ns := startNATS(b, "127.0.0.1:0")
		for i := range hubs {
			hs = append(hs, newHub(b, ns.ClientURL(), fmt.Sprintf("h%d", i), length.Codec{}, "main"))
		}
	}
	var cls []*core.Client
	for i := range c {
		cls = append(cls, hs[i%hubs].client(b, "main"))
	}
	for i, h := range hs {
		h.waitPeers(b, (c-i+hubs-1)/hubs)
	}
	return cls
}

func BenchmarkFederatedRoom(b *testing.B) {
	msg := make([]byte, 64)
	const c = 10
	for _, hubs := range []int{1, 2} {
		b.Run(fmt.Sprintf("fanout/C=%d/hubs=%d", c, hubs), func(b *testing.B) {
			cls := benchRoom(b, hubs, c)
			// Rounds of a bounded burst: NATS core has no backpressure, so
			// a burst larger than a hub's pending limit is dropped (and
			// counted); the rounds keep each within it.
			const round = 2000
			rounds := (b.N/c)/round + 1
			per := rounds * round
			b.ResetTimer()
			for range rounds {
				var wg sync.WaitGroup
				errs := make(chan error, c)
				for _, cl := range cls {
					wg.Add(2)
					go func() {
						defer wg.Done()
						for range round {
							cl.Queue(msg)
						}
						cl.Flush()
					}()
					go func() {
						defer wg.Done()
						cl.Conn().SetReadDeadline(time.Now().Add(time.Minute))
						for range round * (c - 1) {
							if _, err := cl.Receive(); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					b.Fatalf("a delivery never came (lost between hubs?): %v", err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(per*c*(c-1))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
	for _, hubs := range []int{1, 2} {
		b.Run(fmt.Sprintf("rtt/hubs=%d", hubs), func(b *testing.B) {
			cls := benchRoom(b, hubs, 2)
			ping, pong := cls[0], cls[1]
			go func() {
				for {
					m, err := pong.Receive()
					if err != nil {
						return
					}
					pong.Send(m)
				}
			}()
			rtts := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				ping.Send(msg)
				if _, err := ping.Receive(); err != nil {
					b.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
		})
	}
}
