// Package metrics exports the figures of a tether hub ([core.Server], and
// its [federation.Federation]) and of a bridge ([core.Bridge]) to
// Prometheus, through its Go client (github.com/prometheus/client_golang).
//
// The figures are read when Prometheus scrapes, from counters the engine
// keeps anyway, so a relayed message costs nothing more with metrics on.
// Only rare events (a refusal, a disconnect, a bridged connection's end)
// are counted as they happen, through the hooks the caller wires:
// [Hub.Refused], [Hub.Left], [Bridge.Refused], [Bridge.Ended].
package metrics

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tetherkit/tether/core"
	"github.com/tetherkit/tether/federation"
)

var (
	peersDesc       = prometheus.NewDesc("tether_peers", "Clients in a room now, by the transport they came through.", []string{"room", "transport"}, nil)
	connsDesc       = prometheus.NewDesc("tether_connections", "Connections held now, counting those still joining or draining.", nil, nil)
	budgetDesc      = prometheus.NewDesc("tether_read_budget_in_use_bytes", "Bytes of the read budget that large partial frames hold now.", nil, nil)
	msgsInDesc      = prometheus.NewDesc("tether_messages_received_total", "Messages the room's clients sent to the hub (and the host's and other hubs' messages given to the room).", []string{"room"}, nil)
	bytesInDesc     = prometheus.NewDesc("tether_received_bytes_total", "Payload bytes of tether_messages_received_total.", []string{"room"}, nil)
	msgsOutDesc     = prometheus.NewDesc("tether_messages_delivered_total", "Messages queued for a receiver, one per receiver.", []string{"room"}, nil)
	bytesOutDesc    = prometheus.NewDesc("tether_delivered_bytes_total", "Payload bytes of tether_messages_delivered_total.", []string{"room"}, nil)
	queuedDesc      = prometheus.NewDesc("tether_queued_messages", "Messages waiting in the room's receivers' queues now.", []string{"room"}, nil)
	fedSentDesc     = prometheus.NewDesc("tether_federation_messages_sent_total", "Messages published to the other hubs of the room.", []string{"room"}, nil)
	fedRecvDesc     = prometheus.NewDesc("tether_federation_messages_received_total", "Messages from other hubs given to the room.", []string{"room"}, nil)
	fedLostDesc     = prometheus.NewDesc("tether_federation_messages_lost_total", "Messages lost between hubs: direction out, this hub could not publish them (NATS away past the buffer); in, other hubs published them and they never arrived.", []string{"room", "direction"}, nil)
	natsUpDesc      = prometheus.NewDesc("tether_federation_nats_connected", "1 while the hub is connected to NATS, else 0.", nil, nil)
	bridgeOpenDesc  = prometheus.NewDesc("tether_bridge_connections", "Connections being bridged now.", nil, nil)
	bridgeBytesDesc = prometheus.NewDesc("tether_bridge_bytes_total",
		"Bytes carried, by open connections as they move and by ended ones: direction in (from the accepted side to the dialed one) or out.", []string{"direction"}, nil)
)

// Hub collects a hub's figures.
type Hub struct {
	srv         *core.Server
	fed         *federation.Federation
	nc          *nats.Conn
	refusals    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
}

// NewHub returns a collector for srv; fed and nc (the federation and its
// NATS connection) may be nil.
func NewHub(srv *core.Server, fed *federation.Federation, nc *nats.Conn) *Hub {
	return &Hub{
		srv: srv, fed: fed, nc: nc,
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_refusals_total",
			Help: "Connections not let in, by reason: too_many_peers, handshake, handshake_timeout, admission."}, []string{"reason"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_disconnects_total",
			Help: "Clients that left, by reason: left (a clean end), stalled, idle_timeout, write_timeout, frame_too_large, truncated_frame, malformed_frame, read_budget, error."}, []string{"reason"}),
	}
}

// Refused counts a refusal; call it from the server's OnRefuse.
func (h *Hub) Refused(err error) { h.refusals.WithLabelValues(refusalReason(err)).Inc() }

// Left counts a client's end; call it from the server's OnLeave.
func (h *Hub) Left(err error) { h.disconnects.WithLabelValues(leaveReason(err)).Inc() }

func refusalReason(err error) string {
	switch {
	case errors.Is(err, core.ErrTooManyPeers):
		return "too_many_peers"
	case errors.Is(err, core.ErrHandshakeTimeout):
		return "handshake_timeout"
	case errors.Is(err, core.ErrHandshake):
		return "handshake"
	case errors.Is(err, core.ErrRefused):
		return "admission"
	}
	return "other"
}

func leaveReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{core.ErrStalled, "stalled"}, {core.ErrIdleTimeout, "idle_timeout"}, {core.ErrWriteTimeout, "write_timeout"},
		{core.ErrFrameTooLarge, "frame_too_large"}, {core.ErrTruncatedFrame, "truncated_frame"},
		{core.ErrMalformedFrame, "malformed_frame"}, {core.ErrReadBudget, "read_budget"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	if err == nil {
		return "left"
	}
	return "error"
}

// Describe sends the metrics' descriptions.
func (h *Hub) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{peersDesc, connsDesc, budgetDesc, msgsInDesc, bytesInDesc, msgsOutDesc, bytesOutDesc, queuedDesc} {
		ch <- d
	}
	if h.fed != nil {
		ch <- fedSentDesc
		ch <- fedRecvDesc
		ch <- fedLostDesc
	}
	if h.nc != nil {
		ch <- natsUpDesc
	}
	h.refusals.Describe(ch)
	h.disconnects.Describe(ch)
}

// Collect reads the figures now.
func (h *Hub) Collect(ch chan<- prometheus.Metric) {
	type key struct{ room, transport string }
	peers := map[key]int{}
	for _, st := range h.srv.RoomStats() {
		ch <- prometheus.MustNewConstMetric(msgsInDesc, prometheus.CounterValue, float64(st.MessagesIn), st.Room)
		ch <- prometheus.MustNewConstMetric(bytesInDesc, prometheus.CounterValue, float64(st.BytesIn), st.Room)
		ch <- prometheus.MustNewConstMetric(msgsOutDesc, prometheus.CounterValue, float64(st.Deliveries), st.Room)
		ch <- prometheus.MustNewConstMetric(bytesOutDesc, prometheus.CounterValue, float64(st.BytesOut), st.Room)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Queued), st.Room)
	}
	for _, p := range h.srv.Peers() {
		transport := "unknown"
		if a := p.LocalAddr(); a != nil {
			transport = a.Network()
		}
		peers[key{p.Room(), transport}]++
	}
	for k, n := range peers {
		ch <- prometheus.MustNewConstMetric(peersDesc, prometheus.GaugeValue, float64(n), k.room, k.transport)
	}
	st := h.srv.Stats()
	ch <- prometheus.MustNewConstMetric(connsDesc, prometheus.GaugeValue, float64(st.Connections))
	ch <- prometheus.MustNewConstMetric(budgetDesc, prometheus.GaugeValue, float64(st.ReadBudgetInUse))
	if h.fed != nil {
		for _, fs := range h.fed.Stats() {
			ch <- prometheus.MustNewConstMetric(fedSentDesc, prometheus.CounterValue, float64(fs.Sent), fs.Room)
			ch <- prometheus.MustNewConstMetric(fedRecvDesc, prometheus.CounterValue, float64(fs.Received), fs.Room)
			ch <- prometheus.MustNewConstMetric(fedLostDesc, prometheus.CounterValue, float64(fs.LostOut), fs.Room, "out")
			ch <- prometheus.MustNewConstMetric(fedLostDesc, prometheus.CounterValue, float64(fs.LostIn), fs.Room, "in")
		}
	}
	if h.nc != nil {
		up := 0.0
		if h.nc.IsConnected() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(natsUpDesc, prometheus.GaugeValue, up)
	}
	h.refusals.Collect(ch)
	h.disconnects.Collect(ch)
}

// Bridge collects a bridge's figures. Bytes are read from the bridge at
// scrape time, so a long connection's traffic shows while it lasts.
type Bridge struct {
	b        *core.Bridge
	ended    *prometheus.CounterVec
	duration prometheus.Histogram
	refusals prometheus.Counter
}

// NewBridge returns a collector for b.
func NewBridge(b *core.Bridge) *Bridge {
	return &Bridge{
		b: b,
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tether_bridge_connections_total",
			Help: "Bridged connections that ended, by how: done (both sides ended their streams), dial_failed, refused, handshake, idle_timeout, error."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tether_bridge_connection_duration_seconds",
			Help: "How long bridged connections lasted.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "tether_bridge_refusals_total",
			Help: "Connections closed at once because --max-conns were open."}),
	}
}

// Ended counts a connection's end; call it from the bridge's OnEnd.
func (m *Bridge) Ended(st core.BridgeStats) {
	var de *core.DialError
	result := "error"
	switch {
	case st.Err == nil:
		result = "done"
	case errors.As(st.Err, &de):
		result = "dial_failed"
	case errors.Is(st.Err, core.ErrRefused):
		result = "refused"
	case errors.Is(st.Err, core.ErrHandshake):
		result = "handshake"
	case errors.Is(st.Err, core.ErrIdleTimeout):
		result = "idle_timeout"
	}
	m.ended.WithLabelValues(result).Inc()
	m.duration.Observe(st.Duration.Seconds())
}

// Refused counts a connection refused for the connection limit; call it
// from the bridge's OnRefuse.
func (m *Bridge) Refused() { m.refusals.Inc() }

// Describe sends the metrics' descriptions.
func (m *Bridge) Describe(ch chan<- *prometheus.Desc) {
	ch <- bridgeOpenDesc
	ch <- bridgeBytesDesc
	m.ended.Describe(ch)
	m.duration.Describe(ch)
	m.refusals.Describe(ch)
}

// Collect reads the figures now.
func (m *Bridge) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(bridgeOpenDesc, prometheus.GaugeValue, float64(m.b.Active()))
	in, out := m.b.Bytes()
	ch <- prometheus.MustNewConstMetric(bridgeBytesDesc, prometheus.CounterValue, float64(in), "in")
	ch <- prometheus.MustNewConstMetric(bridgeBytesDesc, prometheus.CounterValue, float64(out), "out")
	m.ended.Collect(ch)
	m.duration.Collect(ch)
	m.refusals.Collect(ch)
}

// Registry returns a registry with c and the Go runtime's and the
// process's own metrics (memory, goroutines, CPU, descriptors).
func Registry(c prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve serves reg's metrics at /metrics on addr (host:port; a missing
// host is loopback) until the returned server is closed. The listener is
// open when Serve returns, so a bad address fails here.
func Serve(addr string, reg *prometheus.Registry) (*http.Server, net.Addr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, errors.New("metrics address " + addr + ": want host:port, such as 127.0.0.1:9464")
	}
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return srv, l.Addr(), nil
}
