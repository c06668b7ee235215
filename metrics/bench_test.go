package metrics_test

// BenchmarkHubMetrics measures what metrics cost a hub: the same workloads
// with no metrics, and with the collector registered, served, and scraped
// ten times a second (Prometheus's default is every 15 s):
//
//	go test -run '^$' -bench HubMetrics -count 5 ./metrics/

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherkit/tether/codecs/length"
	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/metrics"
	"github.com/tetherkit/tether/transports/unix"
)

// scraper fetches /metrics every period until stopped.
func scraper(b *testing.B, addr net.Addr, period time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			resp, err := http.Get("http://" + addr.String() + "/metrics")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	return func() { close(done); wg.Wait() }
}

// benchHub starts a hub, with metrics when on, and n clients.
func benchHub(b *testing.B, on bool, n int) ([]*core.Client, func()) {
	srv := &core.Server{}
	dir := b.TempDir()
	l, err := unix.Transport{}.Listen(context.Background(), dir+"/h.sock")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(l, length.Codec{})
	stop := func() { srv.Close() }
	if on {
		hub := metrics.NewHub(srv, nil, nil)
		srv.OnLeave = func(_ *core.Peer, err error) { hub.Left(err) }
		srv.OnRefuse = func(_ net.Addr, err error) { hub.Refused(err) }
		hs, addr, err := metrics.Serve("127.0.0.1:0", metrics.Registry(hub))
		if err != nil {
			b.Fatal(err)
		}
		stopScrape := scraper(b, addr, 100*time.Millisecond)
		stop = func() { stopScrape(); hs.Close(); srv.Close() }
	}
	var cls []*core.Client
	for range n {
		cl, err := core.Dial(context.Background(), unix.Transport{}, l.Addr().String(), length.Codec{}, 0)
		if err != nil {
			b.Fatal(err)
		}
		cls = append(cls, cl)
	}
	for len(srv.Peers()) < n {
		time.Sleep(time.Millisecond) // setup, before the timer
	}
	return cls, func() {
		for _, cl := range cls {
			cl.Close()
		}
		stop()
	}
}

func BenchmarkHubMetrics(b *testing.B) {
	msg := make([]byte, 64)
	for _, on := range []bool{false, true} {
		mode := map[bool]string{false: "off", true: "on"}[on]
		b.Run("p2p/64B/metrics="+mode, func(b *testing.B) {
			cls, stop := benchHub(b, on, 2)
			defer stop()
			done := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := cls[1].Receive(); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cls[0].Queue(msg)
			}
			cls[0].Flush()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
		b.Run(fmt.Sprintf("fanout/C=10/metrics=%s", mode), func(b *testing.B) {
			const c = 10
			cls, stop := benchHub(b, on, c)
			defer stop()
			per := b.N/c + 1
			var wg sync.WaitGroup
			errs := make(chan error, c)
			b.ResetTimer()
			for _, cl := range cls {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for range per {
						cl.Queue(msg)
					}
					cl.Flush()
				}()
				go func() {
					defer wg.Done()
					for range per * (c - 1) {
						if _, err := cl.Receive(); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per*c*(c-1))/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
