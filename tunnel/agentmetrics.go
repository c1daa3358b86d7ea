package tunnel

import (
	"sync"
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
	resultConnected      = "connected"
	resultDialFailed     = "dial_failed"
)

// AgentMetrics are the agent's Prometheus collectors. A nil *AgentMetrics
// counts nothing. Labels are bounded: gateway (the configured gateways),
// verdict and direction (fixed sets), and rule: the allow rule that let a
// stream through, as configured (the list in force: a reload drops the
// series of the rules it removed). No destination address is a label (a
// rule may allow a range; the stream log line names each destination).
type AgentMetrics struct {
	up, lastConnect                 *prometheus.GaugeVec
	connects, failures, disconnects *prometheus.CounterVec
	streamsOpen, allowRules         prometheus.Gauge
	streams, bytes, reloads         *prometheus.CounterVec
	streamDuration, dialDuration    prometheus.Histogram
	ruleStreams, ruleBytes          *prometheus.CounterVec

	mu        sync.Mutex      // ruleNames
	ruleNames map[string]bool // the rule labels of the list in force
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
		ruleStreams: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rule_streams_total",
			Help: "Streams the allow list let through, by the first rule that allows the destination and by result: connected (to the destination), dial_failed."}, []string{"rule", "result"}),
		ruleBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rule_relayed_bytes_total",
			Help: "Bytes relayed by the streams each allow rule let through, by direction (to_destination, from_destination); added when a stream ends."}, []string{"rule", "direction"}),
		ruleNames: map[string]bool{},
	}
	reg.MustRegister(m.up, m.lastConnect, m.connects, m.failures, m.disconnects, m.streamsOpen, m.allowRules,
		m.streams, m.bytes, m.reloads, m.streamDuration, m.dialDuration, m.ruleStreams, m.ruleBytes)
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

// rules follows the allow list in force: its size, a zero series for each
// of its rules, and none left for a rule it no longer has.
func (m *AgentMetrics) rules(al AllowList) {
	if m == nil {
		return
	}
	names := make(map[string]bool, len(al))
	for _, r := range al {
		names[r.String()] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.allowRules.Set(float64(len(al)))
	for name := range m.ruleNames {
		if !names[name] {
			m.ruleStreams.DeletePartialMatch(prometheus.Labels{"rule": name})
			m.ruleBytes.DeletePartialMatch(prometheus.Labels{"rule": name})
		}
	}
	for name := range names {
		m.ruleStreams.WithLabelValues(name, resultConnected)
		m.ruleStreams.WithLabelValues(name, resultDialFailed)
		m.ruleBytes.WithLabelValues(name, directionToDest)
		m.ruleBytes.WithLabelValues(name, directionFromDest)
	}
	m.ruleNames = names
}

// ruleDial counts a dial to a destination rule let through.
func (m *AgentMetrics) ruleDial(rule Rule, err error) {
	if m != nil {
		result := resultConnected
		if err != nil {
			result = resultDialFailed
		}
		m.ruleStreams.WithLabelValues(rule.String(), result).Inc()
	}
}

// ruleRelayed adds the bytes a stream rule let through relayed. (A stream
// that ends after a reload removed its rule brings the rule's series back
// until the next reload: its bytes crossed.)
func (m *AgentMetrics) ruleRelayed(rule Rule, up, down int64) {
	if m != nil {
		name := rule.String()
		m.ruleBytes.WithLabelValues(name, directionToDest).Add(float64(up))
		m.ruleBytes.WithLabelValues(name, directionFromDest).Add(float64(down))
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
