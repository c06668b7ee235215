package cli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tetherkit/tether/metrics"
)

// metricsFlag is --metrics ADDR, on serve and bridge.
type metricsFlag struct{ addr string }

func (m *metricsFlag) register(fs *flag.FlagSet) {
	fs.StringVar(&m.addr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (HOST:PORT; a missing host is loopback)")
}

// check validates the address before anything is opened.
func (m *metricsFlag) check() error {
	if m.addr == "" {
		return nil
	}
	if _, port, err := net.SplitHostPort(m.addr); err != nil || port == "" {
		return usagef("--metrics %q: want HOST:PORT, such as 127.0.0.1:9464", m.addr)
	}
	return nil
}

// start serves c's metrics when asked, and returns what stops it.
func (a *App) startMetrics(m *metricsFlag, c prometheus.Collector) (stop func(), err error) {
	if m.addr == "" {
		return func() {}, nil
	}
	srv, addr, err := metrics.Serve(m.addr, metrics.Registry(c))
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	fmt.Fprintf(a.Stderr, "%s: metrics at http://%s/metrics\n", a.Name, addr)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
