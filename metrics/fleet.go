package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ftpsgate/ftpsgate/events"
)

// storeOps are the fleet store's operations (events.StoreCall.Op); any
// other is "other".
var storeOps = map[string]bool{
	"record": true, "admit": true, "login": true, "renew": true, "release": true, "ban": true,
	"unban": true, "list": true, "totp": true, "lockout": true, "probe": true,
}

func storeOp(op string) string {
	if storeOps[op] {
		return op
	}
	return "other"
}

// fleetMetrics are the fleet's shared store's (package fleet).
type fleetMetrics struct {
	calls     *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	changes   *prometheus.CounterVec
}

func newFleetMetrics(register func(prometheus.Collector)) *fleetMetrics {
	m := &fleetMetrics{
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "fleet", Name: "store_call_duration_seconds",
			Help:    "Calls to the fleet's shared store (Redis) by operation, errors included.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1}}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "fleet", Name: "store_errors_total",
			Help: "Calls to the fleet's shared store that failed, by operation."}, []string{"op"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "fleet", Name: "store_fallbacks_total",
			Help: "Decisions taken without the shared store, by operation and fleet.on_store_error (local: this replica's state; closed: refused)."}, []string{"op", "mode"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "fleet", Name: "store_state_changes_total",
			Help: "The shared store went down or came back up."}, []string{"state"}),
	}
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.fallbacks, m.changes} {
		register(c)
	}
	for _, s := range []string{"down", "up"} {
		m.changes.WithLabelValues(s)
	}
	return m
}

func (m *fleetMetrics) emit(e events.Event) {
	switch e := e.(type) {
	case events.StoreCall:
		op := storeOp(e.Op)
		m.calls.WithLabelValues(op).Observe(e.Duration.Seconds())
		if e.Err != nil {
			m.errors.WithLabelValues(op).Inc()
		}
	case events.StoreFallback:
		m.fallbacks.WithLabelValues(storeOp(e.Op), e.Mode).Inc()
	case events.StoreState:
		s := "down"
		if e.Up {
			s = "up"
		}
		m.changes.WithLabelValues(s).Inc()
	}
}

// FleetState reads the fleet's store at scrape time.
type FleetState struct {
	Down      func() bool // the store is unreachable: decisions fall back (local mode active, or closed refusing)
	BanCache  func() int  // bans in this replica's cache
	Leases    func() int  // session leases this replica holds
	LocalMode bool        // fleet.on_store_error is local
}

// WatchFleet adds the fleet's gauges.
func (m *Metrics) WatchFleet(st FleetState) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: "fleet", Name: name, Help: help}, f))
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge("store_up", "1 while the fleet's shared store answers.", func() float64 { return b(!st.Down()) })
	gauge("local_mode_active", "1 while the store is down and this replica serves with its own state (on_store_error: local).",
		func() float64 { return b(st.LocalMode && st.Down()) })
	gauge("ban_cache_size", "Bans in this replica's cache of the fleet's bans.", func() float64 { return float64(st.BanCache()) })
	gauge("leases_held", "Session places (leases) this replica holds in the shared store.", func() float64 { return float64(st.Leases()) })
}
