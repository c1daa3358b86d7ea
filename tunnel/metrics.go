package tunnel

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Hub's Prometheus collectors. A nil *Metrics counts
// nothing.
type Metrics struct {
	groups        *groupCollector
	refusedC      *prometheus.CounterVec
	dialErrC      *prometheus.CounterVec
	agentRefusedC prometheus.Counter
}

// NewMetrics registers the tunnel's collectors on reg. Labels: group (from
// the configuration) and code (the agent's reply codes, a fixed set).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "ftpsgate_tunnel"
	m := &Metrics{
		groups: &groupCollector{
			agents: prometheus.NewDesc(ns+"_agents", "Agents connected, per group.", []string{"group"}, nil),
			streams: prometheus.NewDesc(ns+"_streams_open", "Streams open through the group's agents.",
				[]string{"group"}, nil),
		},
		refusedC: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "streams_refused_total",
			Help: "Streams an agent refused, by its reply code (refused: not in its allow list; busy; dial: its connection failed)."}, []string{"group", "code"}),
		dialErrC: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "dial_errors_total",
			Help: "Dials through the group that failed without an agent's answer (no agent, tunnel lost)."}, []string{"group"}),
		agentRefusedC: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "agents_refused_total",
			Help: "Agent connections refused (TLS, pin, group claim, hello)."}),
	}
	reg.MustRegister(m.groups, m.refusedC, m.dialErrC, m.agentRefusedC)
	return m
}

// groupStat is one configured group as the gauges show it.
type groupStat struct {
	name            string
	agents, streams int
}

// groupCollector reads the agents and open streams of each configured
// group from the Hub at scrape time: a group a reload removed has no
// series, and no count can drift from the Hub's.
type groupCollector struct {
	agents, streams *prometheus.Desc
	stats           atomic.Pointer[func() []groupStat] // the Hub's; nil before it starts
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.agents; ch <- c.streams }

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.stats.Load()
	if f == nil {
		return
	}
	for _, g := range (*f)() {
		ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(g.agents), g.name)
		ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(g.streams), g.name)
	}
}

// watch makes the gauges read stats.
func (m *Metrics) watch(stats func() []groupStat) {
	if m != nil {
		m.groups.stats.Store(&stats)
	}
}

// forget drops the counters of a group a reload removed (its gauges go
// with it from the Hub's state).
func (m *Metrics) forget(group string) {
	if m != nil {
		m.refusedC.DeletePartialMatch(prometheus.Labels{"group": group})
		m.dialErrC.DeletePartialMatch(prometheus.Labels{"group": group})
	}
}

func (m *Metrics) refusedStream(group, code string) {
	if m != nil {
		switch code {
		case CodeRefused, CodeBusy, CodeDraining, CodeDial, CodeBadRequest:
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
