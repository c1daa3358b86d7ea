package metrics

import (
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ftpsgate/ftpsgate/events"
)

const ns = "ftpsgate"

// verbs are the commands counted by name; any other is "other".
var verbs = map[string]bool{
	"USER": true, "PASS": true, "AUTH": true, "PBSZ": true, "PROT": true, "CCC": true,
	"FEAT": true, "OPTS": true, "SYST": true, "HOST": true, "QUIT": true, "NOOP": true,
	"PASV": true, "EPSV": true, "PORT": true, "EPRT": true, "TYPE": true, "MODE": true, "STRU": true,
	"RETR": true, "STOR": true, "STOU": true, "APPE": true, "REST": true, "ABOR": true,
	"LIST": true, "NLST": true, "MLSD": true, "MLST": true, "SIZE": true, "MDTM": true, "MFMT": true,
	"CWD": true, "CDUP": true, "PWD": true, "MKD": true, "RMD": true, "DELE": true,
	"RNFR": true, "RNTO": true, "SITE": true, "STAT": true, "HELP": true, "ALLO": true,
}

// Verb returns the label value of a command verb: itself when it is in the
// fixed set, "other" otherwise.
func Verb(v string) string {
	v = strings.ToUpper(v)
	if verbs[v] {
		return v
	}
	return "other"
}

// State reads the gateway's current state at scrape time. Any nil field's
// gauge is left out.
type State struct {
	PassiveInUse     func() int
	BansActive       func() int
	TrackedAddresses func() int
	CertNotAfter     func() time.Time
}

// Metrics is an events.Sink that counts; it serves them with Handler.
type Metrics struct {
	reg *prometheus.Registry

	accepted       *prometheus.CounterVec
	refused        *prometheus.CounterVec
	active         *prometheus.GaugeVec
	logins         *prometheus.CounterVec
	handshakes     *prometheus.CounterVec
	commands       *prometheus.CounterVec
	transfers      *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	xferDuration   *prometheus.HistogramVec
	xferSize       *prometheus.HistogramVec
	dataRefused    *prometheus.CounterVec
	passiveExhaust *prometheus.CounterVec
	dialErrors     prometheus.Counter
	dialDuration   prometheus.Histogram
	bansAdded      prometheus.Counter
	certReloads    *prometheus.CounterVec
	configReloads  *prometheus.CounterVec
	auditDropped   *prometheus.CounterVec
	verdicts       *prometheus.CounterVec
	scanned        *prometheus.CounterVec
	backendUp      *prometheus.GaugeVec
	backendChecks  *prometheus.CounterVec
	backendCheckS  *prometheus.HistogramVec
	backendSess    *prometheus.GaugeVec
	backends       *backendSessions
	fleet          *fleetMetrics
}

// backendSessions is ftpsgate_backend_sessions with each backend's count
// beside it, so that a backend a reload removed leaves the metrics when its
// last session ends (at once, when it has none). Its mutex keeps the count
// and the series together.
type backendSessions struct {
	gauge   *prometheus.GaugeVec
	mu      sync.Mutex
	n       map[string]int
	removed map[string]bool
}

// add moves backend's count and series by d.
func (b *backendSessions) add(backend string, d int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n[backend] += d
	b.gauge.WithLabelValues(backend).Add(float64(d))
	b.dropIfGone(backend)
}

// setRemoved marks backend removed by a reload (or, added again, not).
func (b *backendSessions) setRemoved(backend string, removed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !removed {
		delete(b.removed, backend)
		return
	}
	b.removed[backend] = true
	b.dropIfGone(backend)
}

// dropIfGone drops a removed backend's series once it has no session. The
// mark stays until the backend is added again: a session that chose it
// before the reload may still finish its dial and count on it.
func (b *backendSessions) dropIfGone(backend string) {
	if b.removed[backend] && b.n[backend] <= 0 {
		delete(b.n, backend)
		b.gauge.DeleteLabelValues(backend)
	}
}

// New returns metrics on a fresh registry holding the Go and process
// collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_accepted_total",
		Help: "Client control connections admitted (a session started)."}, []string{"listener"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "connections_refused_total",
		Help: "Client control connections refused before the session started, by reason."}, []string{"listener", "reason"})
	m.active = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "sessions_active",
		Help: "Sessions running now."}, []string{"listener"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "logins_total",
		Help: "Login attempts by result (ok, failed, refused, backend_down)."}, []string{"listener", "result"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tls_handshakes_total",
		Help: "Client control-connection TLS handshakes by result and version."}, []string{"listener", "result", "version"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "commands_total",
		Help: "Client commands by verb (a fixed set; others are \"other\")."}, []string{"verb"})
	m.transfers = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "transfers_total",
		Help: "Transfers by direction and result (ok: the client got a 2xx final reply)."}, []string{"direction", "result"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "transfer_bytes_total",
		Help: "Data bytes relayed by direction."}, []string{"direction"})
	m.xferDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "transfer_duration_seconds",
		Help:    "Transfer duration, from the transfer command to the end of the relay.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600}}, []string{"direction"})
	m.xferSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "transfer_size_bytes",
		Help:    "Bytes relayed per transfer.",
		Buckets: prometheus.ExponentialBuckets(1024, 8, 9)}, []string{"direction"}) // 1 KiB .. 16 GiB
	m.dataRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "data_connections_refused_total",
		Help: "Client data connections refused, by reason."}, []string{"listener", "reason"})
	m.passiveExhaust = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "passive_pool_exhausted_total",
		Help: "Passive requests refused because no port was free (scope: pool, or per_ip share)."}, []string{"scope"})
	m.dialErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "backend_dial_errors_total",
		Help: "Backend dials (connect, TLS, banner) that failed."})
	m.dialDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "backend_dial_duration_seconds",
		Help:    "Time to dial the backend (connect, TLS, banner), successful dials.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}})
	m.bansAdded = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "bans_added_total",
		Help: "Addresses banned."})
	m.certReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "certificate_reloads_total",
		Help: "Served-certificate reloads by result."}, []string{"result"})
	m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
		Help: "Configuration reloads by result."}, []string{"result"})
	m.auditDropped = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "audit_records_dropped_total",
		Help: "Audit records dropped because a sink's queue was full, by sink."}, []string{"sink"})
	m.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "inspection_verdicts_total",
		Help: "Content inspection findings by detector and action (alert, block)."}, []string{"detector", "action"})
	m.scanned = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "inspection_scanned_bytes_total",
		Help: "Bytes inspected to the end of their transfer, by direction."}, []string{"direction"})
	m.backendUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backend_up",
		Help: "1 while a health-checked backend is up, 0 while it is down (after its rise and fall counts)."}, []string{"backend"})
	m.backendChecks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "backend_checks_total",
		Help: "Backend health checks by result."}, []string{"backend", "result"})
	m.backendCheckS = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "backend_check_duration_seconds",
		Help:    "Time a backend health check took.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}}, []string{"backend"})
	m.backendSess = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backend_sessions",
		Help: "Sessions holding a connection to the backend now."}, []string{"backend"})
	m.backends = &backendSessions{gauge: m.backendSess, n: map[string]int{}, removed: map[string]bool{}}
	for _, c := range []prometheus.Collector{m.backendUp, m.backendChecks, m.backendCheckS, m.backendSess, m.verdicts, m.scanned, m.auditDropped, m.accepted, m.refused, m.active, m.logins, m.handshakes, m.commands,
		m.transfers, m.bytes, m.xferDuration, m.xferSize, m.dataRefused, m.passiveExhaust, m.dialErrors,
		m.dialDuration, m.bansAdded, m.certReloads, m.configReloads} {
		f(c)
	}
	m.fleet = newFleetMetrics(f)
	for _, d := range []string{"upload", "download"} {
		m.bytes.WithLabelValues(d)
		for _, r := range []string{"ok", "failed"} {
			m.transfers.WithLabelValues(d, r)
		}
	}
	for _, r := range []string{"ok", "failed"} {
		m.configReloads.WithLabelValues(r)
		m.certReloads.WithLabelValues(r)
	}
	return m
}

// Watch adds the gauges read from the gateway's state at scrape time.
func (m *Metrics) Watch(st State) {
	gauge := func(name, help string, f func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, f))
	}
	if st.PassiveInUse != nil {
		gauge("passive_ports_in_use", "Passive ports leased now.", func() float64 { return float64(st.PassiveInUse()) })
	}
	if st.BansActive != nil {
		gauge("bans_active", "Addresses banned now.", func() float64 { return float64(st.BansActive()) })
	}
	if st.TrackedAddresses != nil {
		gauge("tracked_addresses", "Client addresses the connection limits track.", func() float64 { return float64(st.TrackedAddresses()) })
	}
	if st.CertNotAfter != nil {
		gauge("certificate_expiry_timestamp_seconds", "When the served certificate expires (Unix time).",
			func() float64 { return float64(st.CertNotAfter().Unix()) })
	}
}

// AuditDropped counts an audit record a full queue dropped for sink (the
// audit trail's TrailConfig.Dropped). Sink names are the configured sinks'.
func (m *Metrics) AuditDropped(sink string) { m.auditDropped.WithLabelValues(sink).Inc() }

// Registry returns the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func direction(upload bool) string {
	if upload {
		return "upload"
	}
	return "download"
}

func result(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}

// detectorLabel bounds the detector label: a pattern's name is the
// configuration's (a fixed set); a file type is one of a fixed set.
func detectorLabel(d string) string {
	if len(d) > 64 {
		return d[:64]
	}
	return d
}

// tlsVersion is the label value of a TLS version.
func tlsVersion(v uint16) string {
	switch v {
	case 0:
		return "none"
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return "other"
}

// Emit counts one event. It never blocks.
func (m *Metrics) Emit(e events.Event) {
	switch e := e.(type) {
	case events.SessionStarted:
		m.accepted.WithLabelValues(e.Listener).Inc()
		m.active.WithLabelValues(e.Listener).Inc()
	case events.SessionEnded:
		m.active.WithLabelValues(e.Listener).Dec()
	case events.ConnectionRefused:
		m.refused.WithLabelValues(e.Listener, e.Reason).Inc()
	case events.TLSHandshake:
		m.handshakes.WithLabelValues(e.Listener, result(e.OK), tlsVersion(e.Version)).Inc()
	case events.Login:
		m.logins.WithLabelValues(e.Listener, e.Result).Inc()
	case events.Command:
		m.commands.WithLabelValues(Verb(e.Verb)).Inc()
	case events.Transfer:
		d := direction(e.Upload)
		m.transfers.WithLabelValues(d, result(e.OK())).Inc()
		m.bytes.WithLabelValues(d).Add(float64(e.Bytes))
		m.xferDuration.WithLabelValues(d).Observe(e.Duration.Seconds())
		m.xferSize.WithLabelValues(d).Observe(float64(e.Bytes))
	case events.DataRefused:
		m.dataRefused.WithLabelValues(e.Listener, e.Reason).Inc()
	case events.PassiveExhausted:
		scope := "pool"
		if e.PerIP {
			scope = "per_ip"
		}
		m.passiveExhaust.WithLabelValues(scope).Inc()
	case events.BackendDial:
		if e.Err != nil {
			m.dialErrors.Inc()
		} else {
			m.dialDuration.Observe(e.Duration.Seconds())
			if e.Backend != "" {
				m.backends.add(e.Backend, 1)
			}
		}
	case events.BackendReleased:
		if e.Backend != "" {
			m.backends.add(e.Backend, -1)
		}
	case events.BackendCheck:
		m.backendChecks.WithLabelValues(e.Backend, result(e.Err == nil)).Inc()
		m.backendCheckS.WithLabelValues(e.Backend).Observe(e.Duration.Seconds())
		up := 0.0
		if e.Up {
			up = 1
		}
		m.backendUp.WithLabelValues(e.Backend).Set(up)
	case events.BackendConfig:
		// A removed backend, or one no longer checked: its health series
		// go. A removed backend's backend_sessions counts its last
		// sessions down and goes with the last.
		m.backends.setRemoved(e.Backend, e.Change == events.BackendRemoved)
		if e.Change == events.BackendRemoved || !e.Checked {
			m.backendUp.DeleteLabelValues(e.Backend)
			m.backendCheckS.DeleteLabelValues(e.Backend)
			m.backendChecks.DeletePartialMatch(prometheus.Labels{"backend": e.Backend})
		}
	case events.StoreCall, events.StoreFallback, events.StoreState:
		m.fleet.emit(e)
	case events.Ban:
		if e.Added {
			m.bansAdded.Inc()
		}
	case events.Certificate:
		switch e.Kind {
		case events.CertReloaded:
			m.certReloads.WithLabelValues("ok").Inc()
		case events.CertReloadFailed:
			m.certReloads.WithLabelValues("failed").Inc()
		}
	case events.Inspection:
		m.verdicts.WithLabelValues(detectorLabel(e.Detector), e.Action).Inc()
	case events.Inspected:
		m.scanned.WithLabelValues(direction(e.Upload)).Add(float64(e.Bytes))
	case events.ConfigReload:
		m.configReloads.WithLabelValues(result(e.OK)).Inc()
	}
}
