package tunnel

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Hub's Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	agentsG       *prometheus.GaugeVec
	streamsG      *prometheus.GaugeVec
	refusedC      *prometheus.CounterVec
	dialErrC      *prometheus.CounterVec
	agentRefusedC prometheus.Counter
}

// NewMetrics registers the tunnel's collectors on reg. Labels: group (from
// the configuration) and code (the agent's reply codes, a fixed set).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "ftpsgate_tunnel"
	m := &Metrics{
		agentsG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "agents",
			Help: "Agents connected, per group."}, []string{"group"}),
		streamsG: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "streams_open",
			Help: "Streams open through the group's agents."}, []string{"group"}),
		refusedC: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "streams_refused_total",
			Help: "Streams an agent refused, by its reply code (refused: not in its allow list; busy; dial: its connection failed)."}, []string{"group", "code"}),
		dialErrC: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dial_errors_total",
			Help: "Dials through the group that failed without an agent's answer (no agent, tunnel lost)."}, []string{"group"}),
		agentRefusedC: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "agents_refused_total",
			Help: "Agent connections refused (TLS, pin, group claim, hello)."}),
	}
	reg.MustRegister(m.agentsG, m.streamsG, m.refusedC, m.dialErrC, m.agentRefusedC)
	return m
}

func (m *Metrics) agents(group string, n int) {
	if m != nil {
		m.agentsG.WithLabelValues(group).Set(float64(n))
	}
}

// forget drops a removed group's series.
func (m *Metrics) forget(group string) {
	if m != nil {
		m.agentsG.DeleteLabelValues(group)
	}
}

func (m *Metrics) streams(group string, d float64) {
	if m != nil {
		m.streamsG.WithLabelValues(group).Add(d)
	}
}

func (m *Metrics) refusedStream(group, code string) {
	if m != nil {
		switch code {
		case CodeRefused, CodeBusy, CodeDial, CodeBadRequest:
		default:
			code = "other"
		}
		m.refusedC.WithLabelValues(group, code).Inc()
	}
}

func (m *Metrics) dialError(group string) {
	if m != nil {
		m.dialErrC.WithLabelValues(group).Inc()
	}
}

func (m *Metrics) refusedAgent() {
	if m != nil {
		m.agentRefusedC.Inc()
	}
}
