package tunnel

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stream verdicts, the agent's streams_total label: a fixed set.
const (
	VerdictAllowed       = "allowed"
	VerdictRefusedAllow  = "refused_allow_list"
	VerdictRefusedBusy   = "refused_busy"
	VerdictDialFailed    = "dial_failed"
	VerdictBadRequest    = "bad_request"
	directionToDest      = "to_destination"
	directionFromDest    = "from_destination"
	agentMetricNamespace = "ftpsgate_agent"
)

// AgentMetrics are the agent's Prometheus collectors. A nil *AgentMetrics
// counts nothing. Labels are bounded: gateway (the configured gateways),
// verdict and direction (fixed sets); no destination label (the stream log
// line names it).
type AgentMetrics struct {
	up, lastConnect                 *prometheus.GaugeVec
	connects, failures, disconnects *prometheus.CounterVec
	streamsOpen, allowRules         prometheus.Gauge
	streams, bytes, reloads         *prometheus.CounterVec
	streamDuration, dialDuration    prometheus.Histogram
}

// NewAgentMetrics registers the agent's collectors on reg; gateways are the
// configured addresses (their series start at zero).
func NewAgentMetrics(reg prometheus.Registerer, gateways []string) *AgentMetrics {
	const ns = agentMetricNamespace
	gw := []string{"gateway"}
	m := &AgentMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tunnel_up",
			Help: "1 while the tunnel to this gateway is up, 0 otherwise."}, gw),
		lastConnect: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "tunnel_last_connect_timestamp_seconds",
			Help: "When the tunnel to this gateway last came up (Unix time; 0: never)."}, gw),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnel_connects_total",
			Help: "Tunnels established to this gateway (TLS, pins and hello passed)."}, gw),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnel_connect_failures_total",
			Help: "Connection attempts to this gateway that failed (TCP, TLS, pin, hello); each is followed by a backoff."}, gw),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tunnel_disconnects_total",
			Help: "Tunnels to this gateway that went down."}, gw),
		streamsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "streams_open",
			Help: "Streams being served now (from the request to the end of the relay)."}),
		allowRules: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "allow_rules",
			Help: "Rules in the allow list in force (changes on a SIGHUP reload)."}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "streams_total",
			Help: "Streams by verdict: allowed, refused_allow_list, refused_busy (max_streams, or shutting down), dial_failed, bad_request."}, []string{"verdict"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "relayed_bytes_total",
			Help: "Bytes relayed by allowed streams, by direction (to_destination, from_destination); added when a stream ends."}, []string{"direction"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
			Help: "SIGHUP reloads of agent.yaml by result."}, []string{"result"}),
		streamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "stream_duration_seconds",
			Help:    "Duration of allowed streams, from the request to the end of the relay.",
			Buckets: []float64{0.1, 1, 10, 60, 300, 1800, 3600, 14400}}),
		dialDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "dial_duration_seconds",
			Help:    "Time to connect to a destination, successful dials.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}}),
	}
	reg.MustRegister(m.up, m.lastConnect, m.connects, m.failures, m.disconnects, m.streamsOpen, m.allowRules,
		m.streams, m.bytes, m.reloads, m.streamDuration, m.dialDuration)
	for _, g := range gateways {
		m.up.WithLabelValues(g)
		m.lastConnect.WithLabelValues(g)
		m.connects.WithLabelValues(g)
		m.failures.WithLabelValues(g)
		m.disconnects.WithLabelValues(g)
	}
	for _, v := range []string{VerdictAllowed, VerdictRefusedAllow, VerdictRefusedBusy, VerdictDialFailed, VerdictBadRequest} {
		m.streams.WithLabelValues(v)
	}
	m.bytes.WithLabelValues(directionToDest)
	m.bytes.WithLabelValues(directionFromDest)
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	return m
}

func (m *AgentMetrics) tunnelUp(gw string, at time.Time) {
	if m != nil {
		m.up.WithLabelValues(gw).Set(1)
		m.connects.WithLabelValues(gw).Inc()
		m.lastConnect.WithLabelValues(gw).Set(float64(at.Unix()))
	}
}

func (m *AgentMetrics) tunnelDown(gw string) {
	if m != nil {
		m.up.WithLabelValues(gw).Set(0)
		m.disconnects.WithLabelValues(gw).Inc()
	}
}

func (m *AgentMetrics) connectFailed(gw string) {
	if m != nil {
		m.failures.WithLabelValues(gw).Inc()
	}
}

func (m *AgentMetrics) streamOpen(d float64) {
	if m != nil {
		m.streamsOpen.Add(d)
	}
}

func (m *AgentMetrics) verdict(v string) {
	if m != nil {
		m.streams.WithLabelValues(v).Inc()
	}
}

func (m *AgentMetrics) dialed(d time.Duration) {
	if m != nil {
		m.dialDuration.Observe(d.Seconds())
	}
}

func (m *AgentMetrics) relayed(up, down int64, d time.Duration) {
	if m != nil {
		m.bytes.WithLabelValues(directionToDest).Add(float64(up))
		m.bytes.WithLabelValues(directionFromDest).Add(float64(down))
		m.streamDuration.Observe(d.Seconds())
	}
}

func (m *AgentMetrics) rules(n int) {
	if m != nil {
		m.allowRules.Set(float64(n))
	}
}

// Reloaded counts a reload of the agent's configuration (ok or failed).
func (m *AgentMetrics) Reloaded(ok bool) {
	if m != nil {
		r := "failed"
		if ok {
			r = "ok"
		}
		m.reloads.WithLabelValues(r).Inc()
	}
}
