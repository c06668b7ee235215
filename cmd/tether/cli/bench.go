package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tetherkit/tether/core"
)

type benchFlags struct {
	common
	size     countFlag
	duration durationFlag
	count    countFlag
	clients  countFlag
	pings    countFlag
	json     bool
	options  *optionFlags
}

// benchResult is one line of the report.
type benchResult struct {
	Test            string  `json:"test"`
	Clients         int     `json:"clients"`
	Messages        int64   `json:"messages"`
	Seconds         float64 `json:"seconds"`
	MsgsPerSec      float64 `json:"msgs_per_sec,omitempty"`
	MBPerSec        float64 `json:"mb_per_sec,omitempty"`
	DeliveriesPerS  float64 `json:"deliveries_per_sec,omitempty"`
	P50Microseconds float64 `json:"p50_us,omitempty"`
	P99Microseconds float64 `json:"p99_us,omitempty"`
	MaxMicroseconds float64 `json:"max_us,omitempty"`
}

// bench measures the link a user has: through a hub (its own, or one at
// --addr), point to point, round trip and fan-out, each bounded in time.
// benchFlags defines the flags of "bench".
func (a *App) benchFlags() (*flag.FlagSet, *benchFlags) {
	var f benchFlags
	fs := a.newFlagSet("bench", "Measure a link through a hub: point-to-point throughput, round-trip latency and\n"+
		"fan-out. Without --addr it runs its own hub on a private address of its transport (a temporary socket, a loopback port);\n"+
		"with --addr it uses that hub, whose other clients will see the benchmark's messages.")
	f.register(fs, a)
	f.size = countFlag{v: 64, min: 1, max: maxFrameLimit}
	fs.Var(&f.size, "size", "message size in bytes (at most --max-frame)")
	f.duration = durationFlag{v: 3 * time.Second, min: time.Millisecond, max: time.Hour}
	fs.Var(&f.duration, "duration", "how long each test runs at most")
	f.count = countFlag{max: 1 << 40}
	fs.Var(&f.count, "count", "messages per throughput test (0: as many as fit in --duration)")
	f.clients = countFlag{v: 10, min: 2, max: 10000}
	fs.Var(&f.clients, "clients", "clients in the fan-out test")
	f.pings = countFlag{v: 5000, min: 1, max: 10_000_000}
	fs.Var(&f.pings, "pings", "round trips to time at most")
	fs.BoolVar(&f.json, "json", false, "print the results as JSON")
	f.options = a.registerOptions(fs, core.ForDial)
	return fs, &f
}

func (a *App) bench(ctx context.Context, args []string) error {
	fs, f := a.benchFlags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if int64(f.size.v) > f.maxFrame.v {
		return usagef("--size %d is larger than --max-frame %s", f.size.v, f.maxFrame.String())
	}
	codec, err := a.lookupCodec(f.codec)
	if err != nil {
		return err
	}
	tgt, stop, err := a.benchTarget(ctx, f, codec)
	if err != nil {
		return err
	}
	defer stop()

	msg := bytes.Repeat([]byte("b"), f.size.v)
	progress := a.progress(f.json)
	var results []benchResult
	for _, run := range []func() (benchResult, error){
		func() (benchResult, error) { return benchP2P(ctx, tgt, codec, f, msg, progress) },
		func() (benchResult, error) { return benchRTT(ctx, tgt, codec, f, msg, progress) },
		func() (benchResult, error) { return benchFanOut(ctx, tgt, codec, f, msg, progress) },
	} {
		r, err := run()
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	progress("")
	if f.json {
		enc := json.NewEncoder(a.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"endpoint": tgt.String(), "codec": codec.Name(), "size": f.size.v, "results": results})
	}
	fmt.Fprintf(a.Stdout, "%s bench: %s, codec %s, %d-byte messages\n\n", a.Name, tgt, codec.Name(), f.size.v)
	tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "test\tclients\tmessages\tmsg/s\tMB/s\tdeliveries/s\tp50\tp99\tmax\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Test, r.Clients, r.Messages,
			num(r.MsgsPerSec), num(r.MBPerSec), num(r.DeliveriesPerS),
			micros(r.P50Microseconds), micros(r.P99Microseconds), micros(r.MaxMicroseconds))
	}
	return tw.Flush()
}

// benchTarget returns the hub to measure through: --addr, or a hub of its
// own on an address its transport gives for the purpose ([core.Ephemeral]).
// A transport without one (vsock: it would have to dial the local CID,
// which on a guest goes to the hypervisor) needs --addr.
func (a *App) benchTarget(ctx context.Context, f *benchFlags, codec core.Codec) (core.Target, func(), error) {
	if f.addr != "" {
		tgt, err := a.resolve(f.addr, f.transport, f.options)
		if err == nil {
			err = f.options.checkUsed(tgt)
		}
		return tgt, func() {}, err
	}
	name := f.transport
	if name == "" {
		name = a.Transports.DefaultName()
	}
	t, err := a.Transports.Lookup(name)
	if err != nil {
		return core.Target{}, nil, usageError{err}
	}
	eph, ok := t.(core.Ephemeral)
	if !ok {
		return core.Target{}, nil, usagef("give --addr for %s: the hub to measure through (this transport has no address of its own for a private hub)", name)
	}
	addr, release, err := eph.EphemeralAddress()
	if err != nil {
		return core.Target{}, nil, err
	}
	tgt, err := a.resolve(core.Endpoint{Transport: name, Address: addr}.String(), "", f.options)
	if err == nil {
		err = f.options.checkUsed(tgt)
	}
	if err != nil {
		release()
		return core.Target{}, nil, err
	}
	l, err := tgt.Listen(ctx)
	if err != nil {
		release()
		return core.Target{}, nil, err
	}
	srv := &core.Server{MaxFrame: int(f.maxFrame.v)}
	go srv.Serve(l, codec)
	tgt.Address = l.Addr().String()
	return tgt, func() { srv.Close(); release() }, nil
}

// progress returns a function that rewrites one status line on standard
// error when it is a terminal (and not with --json).
func (a *App) progress(quiet bool) func(string) {
	tty := false
	if f, ok := a.Stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	if quiet || !tty {
		return func(string) {}
	}
	return func(s string) { fmt.Fprintf(a.Stderr, "\r\033[K%s", s) }
}

// benchClients dials n clients and makes sure all are in the room: each
// sends a hello until the next one hears it.
func benchClients(ctx context.Context, tgt core.Target, codec core.Codec, f *benchFlags, n int) ([]*core.Client, error) {
	var cls []*core.Client
	for range n {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := tgt.Dial(dctx)
		cancel()
		if err != nil {
			for _, c := range cls {
				c.Close()
			}
			return nil, fmt.Errorf("connecting to %s: %w", tgt, err)
		}
		cls = append(cls, core.NewClient(conn, codec, int(f.maxFrame.v)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, c := range cls {
		next := cls[(i+1)%n]
		for {
			if time.Now().After(deadline) {
				return nil, errors.New("the clients did not all hear each other through the hub within 10 s: is --addr a tether hub (not a plain echo server), speaking --codec " + codec.Name() + "?")
			}
			c.Send([]byte("bench-hello"))
			next.Conn().SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := next.Receive()
			if err == nil {
				break
			}
		}
	}
	// Drop the hellos still on their way.
	for _, c := range cls {
		for {
			c.Conn().SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if _, err := c.Receive(); err != nil {
				break
			}
		}
		c.Conn().SetReadDeadline(time.Time{})
	}
	return cls, nil
}

func closeAll(cls []*core.Client) {
	for _, c := range cls {
		c.Close()
	}
}

func benchP2P(ctx context.Context, tgt core.Target, codec core.Codec, f *benchFlags, msg []byte, progress func(string)) (benchResult, error) {
	cls, err := benchClients(ctx, tgt, codec, f, 2)
	if err != nil {
		return benchResult{}, err
	}
	defer closeAll(cls)
	tx, rx := cls[0], cls[1]
	var sent, got atomic.Int64
	stop := make(chan struct{})
	start := time.Now()
	go func() {
		for f.count.v == 0 || sent.Load() < int64(f.count.v) {
			select {
			case <-stop:
				tx.Flush()
				return
			default:
			}
			for range 64 {
				if tx.Queue(msg) != nil {
					return
				}
			}
			sent.Add(64)
		}
		tx.Flush()
	}()
	deadline := start.Add(f.duration.v)
	tick := start
	for {
		if _, err := rx.Receive(); err != nil {
			return benchResult{}, fmt.Errorf("point-to-point: %w", err)
		}
		n := got.Add(1)
		if n%4096 == 0 {
			now := time.Now()
			if now.After(deadline) || ctx.Err() != nil {
				break
			}
			if now.Sub(tick) > 250*time.Millisecond {
				tick = now
				progress(fmt.Sprintf("point-to-point: %d messages, %.1f s", n, now.Sub(start).Seconds()))
			}
		}
		if f.count.v > 0 && n >= int64(f.count.v) {
			break
		}
	}
	elapsed := time.Since(start)
	close(stop)
	n := got.Load()
	return benchResult{Test: "point-to-point", Clients: 2, Messages: n, Seconds: elapsed.Seconds(),
		MsgsPerSec: float64(n) / elapsed.Seconds(), MBPerSec: float64(n) * float64(len(msg)) / elapsed.Seconds() / 1e6}, nil
}

func benchRTT(ctx context.Context, tgt core.Target, codec core.Codec, f *benchFlags, msg []byte, progress func(string)) (benchResult, error) {
	cls, err := benchClients(ctx, tgt, codec, f, 2)
	if err != nil {
		return benchResult{}, err
	}
	defer closeAll(cls)
	a, echo := cls[0], cls[1]
	go func() {
		for {
			m, err := echo.Receive()
			if err != nil || echo.Send(m) != nil {
				return
			}
		}
	}()
	var d []time.Duration
	start := time.Now()
	for len(d) < f.pings.v && time.Since(start) < f.duration.v && ctx.Err() == nil {
		t0 := time.Now()
		if err := a.Send(msg); err != nil {
			return benchResult{}, fmt.Errorf("round trip: %w", err)
		}
		if _, err := a.Receive(); err != nil {
			return benchResult{}, fmt.Errorf("round trip: %w", err)
		}
		d = append(d, time.Since(t0))
		if len(d)%500 == 0 {
			progress(fmt.Sprintf("round trip: %d pings", len(d)))
		}
	}
	if len(d) == 0 {
		return benchResult{}, errors.New("round trip: no ping completed (interrupted)")
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	us := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	return benchResult{Test: "round trip", Clients: 2, Messages: int64(len(d)), Seconds: time.Since(start).Seconds(),
		P50Microseconds: us(0.5), P99Microseconds: us(0.99), MaxMicroseconds: us(1)}, nil
}

func benchFanOut(ctx context.Context, tgt core.Target, codec core.Codec, f *benchFlags, msg []byte, progress func(string)) (benchResult, error) {
	cls, err := benchClients(ctx, tgt, codec, f, f.clients.v)
	if err != nil {
		return benchResult{}, err
	}
	defer closeAll(cls)
	var delivered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range cls {
		wg.Add(1)
		go func() { // send in bursts until stopped
			defer wg.Done()
			for {
				select {
				case <-stop:
					c.CloseWrite()
					return
				default:
				}
				for range 16 {
					c.Queue(msg)
				}
				if c.Flush() != nil {
					return
				}
			}
		}()
		go func() {
			for {
				if _, err := c.Receive(); err != nil {
					return
				}
				delivered.Add(1)
			}
		}()
	}
	for time.Since(start) < f.duration.v && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		progress(fmt.Sprintf("fan-out: %d deliveries", delivered.Load()))
	}
	elapsed := time.Since(start)
	n := delivered.Load()
	close(stop)
	wg.Wait()
	return benchResult{Test: "fan-out", Clients: f.clients.v, Messages: n, Seconds: elapsed.Seconds(),
		DeliveriesPerS: float64(n) / elapsed.Seconds(), MBPerSec: float64(n) * float64(len(msg)) / elapsed.Seconds() / 1e6}, nil
}

func num(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.1f", v)
}

func micros(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us >= 1000:
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}
