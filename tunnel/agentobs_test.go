package tunnel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// value reads a counter's or a gauge's value.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitValue waits until f returns want.
func waitValue(t *testing.T, what string, f func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", what, f(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentMetrics: the agent counts its tunnel and each stream by verdict,
// the bytes an allowed stream relayed, its duration and its dial; the
// registry serves them in the Prometheus text format.
func TestAgentMetrics(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	dst, other, dead := echoServer(t), echoServer(t), closedPort(t)
	reg := prometheus.NewRegistry()
	m := NewAgentMetrics(reg, []string{gw})
	cfg := agentConfig(p, leaf, gw, "lan", "a", dst, dead)
	cfg.MaxStreams = 1
	ra := startAgent(t, cfg, WithAgentMetrics(m))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", ra.log)
		}
	})
	waitAgents(t, h, "lan", 1)
	waitValue(t, "tunnel_up", func() float64 { return value(m.up.WithLabelValues(gw)) }, 1)
	if n := value(m.connects.WithLabelValues(gw)); n != 1 {
		t.Errorf("tunnel_connects_total %v, want 1", n)
	}
	if ts := value(m.lastConnect.WithLabelValues(gw)); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("tunnel_last_connect_timestamp_seconds %v", ts)
	}
	if n := value(m.allowRules); n != 2 {
		t.Errorf("allow_rules %v, want 2", n)
	}

	c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	waitValue(t, "streams_open", func() float64 { return value(m.streamsOpen) }, 1)
	// The agent's one stream is taken: busy.
	var re *RefusedError
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("")); !errors.As(err, &re) || re.Code != CodeBusy {
		t.Fatalf("a second stream: %v, want busy", err)
	}
	echoOnce(t, c) // 4 bytes each way, then closed
	waitValue(t, "streams_open", func() float64 { return value(m.streamsOpen) }, 0)
	for _, addr := range []string{other, dead} {
		if _, err := h.Dialer("lan").DialBackend(dialCtx(t), addr, netipAddr("")); !errors.As(err, &re) {
			t.Fatalf("%s: %v, want a refusal", addr, err)
		}
		// The refused stream's handler (holding the one place) ends
		// just after its reply.
		waitValue(t, "streams_open", func() float64 { return value(m.streamsOpen) }, 0)
	}
	want := map[string]float64{VerdictAllowed: 1, VerdictRefusedBusy: 1, VerdictRefusedAllow: 1, VerdictDialFailed: 1, VerdictBadRequest: 0}
	for v, n := range want {
		waitValue(t, "streams_total{verdict="+v+"}", func() float64 { return value(m.streams.WithLabelValues(v)) }, n)
	}
	waitValue(t, "relayed_bytes_total{to_destination}", func() float64 { return value(m.bytes.WithLabelValues(directionToDest)) }, 4)
	waitValue(t, "relayed_bytes_total{from_destination}", func() float64 { return value(m.bytes.WithLabelValues(directionFromDest)) }, 4)
	// By allow rule: dst's rule connected once and relayed 4 bytes each
	// way; dead's rule let one stream through whose dial failed.
	for _, c := range []struct {
		v    *prometheus.CounterVec
		l    []string
		want float64
	}{
		{m.ruleStreams, []string{dst, resultConnected}, 1},
		{m.ruleStreams, []string{dst, resultDialFailed}, 0},
		{m.ruleStreams, []string{dead, resultConnected}, 0},
		{m.ruleStreams, []string{dead, resultDialFailed}, 1},
		{m.ruleBytes, []string{dst, directionToDest}, 4},
		{m.ruleBytes, []string{dst, directionFromDest}, 4},
		{m.ruleBytes, []string{dead, directionFromDest}, 0},
	} {
		waitValue(t, fmt.Sprintf("%v", c.l), func() float64 { return value(c.v.WithLabelValues(c.l...)) }, c.want)
	}

	// A refused stream's handler ends just after its reply.
	waitValue(t, "streams_open", func() float64 { return value(m.streamsOpen) }, 0)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, line := range []string{
		`ftpsgate_agent_tunnel_up{gateway="` + gw + `"} 1`,
		`ftpsgate_agent_streams_total{verdict="refused_allow_list"} 1`,
		`ftpsgate_agent_stream_duration_seconds_count 1`,
		`ftpsgate_agent_dial_duration_seconds_count 1`,
		`ftpsgate_agent_streams_open 0`,
		`ftpsgate_agent_rule_streams_total{result="connected",rule="` + dst + `"} 1`,
		`ftpsgate_agent_rule_relayed_bytes_total{direction="from_destination",rule="` + dst + `"} 4`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("no %q in the scrape:\n%s", line, body)
		}
	}
	// Addresses appear only as the configured rules: not the refused one.
	if strings.Contains(body, other) {
		t.Errorf("a refused destination is a label:\n%s", body)
	}
}

func healthz(t *testing.T, a *Agent) (int, Health) {
	t.Helper()
	rec := httptest.NewRecorder()
	a.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var h Health
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatalf("healthz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, h
}

func waitHealth(t *testing.T, a *Agent, code int, status string) Health {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, h := healthz(t, a)
		if c == code && h.Status == status {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %+v, want %d %s", c, h, code, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentHealthz: 503 before the tunnel is up, 200 while it is, 503 when
// the gateway goes away, 200 again once the agent reconnected; the body
// lists each gateway and its state.
func TestAgentHealthz(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	groups := map[string][][32]byte{"lan": {pinOf(leaf)}}
	spare := closedPort(t) // a second gateway that never answers
	cfg := agentConfig(p, leaf, spare, "lan", "a")
	ag := NewAgent(cfg, zerolog.Nop())
	if c, h := healthz(t, ag); c != http.StatusServiceUnavailable || h.Status != "down" || len(h.Gateways) != 1 || h.Gateways[0].State != "down" {
		t.Fatalf("before start: %d %+v", c, h)
	}

	h, gw := startHub(t, p, "127.0.0.1:0", groups, zerolog.Nop())
	cfg.Gateways = []string{gw, spare}
	r := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	up := waitHealth(t, r.agent, http.StatusOK, "up")
	if len(up.Gateways) != 2 || up.Gateways[0] != (GatewayState{Address: gw, State: "up", Since: up.Gateways[0].Since}) ||
		up.Gateways[0].Since.IsZero() || up.Gateways[1].Address != spare || up.Gateways[1].State != "down" {
		t.Fatalf("up: %+v", up)
	}
	h.Close()
	down := waitHealth(t, r.agent, http.StatusServiceUnavailable, "down")
	if down.Gateways[0].State != "down" {
		t.Fatalf("down: %+v", down)
	}
	h2, _ := startHub(t, p, gw, groups, zerolog.Nop())
	waitAgents(t, h2, "lan", 1)
	waitHealth(t, r.agent, http.StatusOK, "up")
}

// TestAgentReloadAllow: after SetAllow (what SIGHUP does), a stream to a
// destination no longer listed is refused and one newly listed is
// allowed, while a stream opened before goes on relaying.
func TestAgentReloadAllow(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	oldDst, newDst := echoServer(t), echoServer(t)
	reg := prometheus.NewRegistry()
	m := NewAgentMetrics(reg, []string{gw})
	r := startAgent(t, agentConfig(p, leaf, gw, "lan", "a", oldDst), WithAgentMetrics(m))
	waitAgents(t, h, "lan", 1)

	held, err := h.Dialer("lan").DialBackend(dialCtx(t), oldDst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	var re *RefusedError
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), newDst, netipAddr("")); !errors.As(err, &re) || re.Code != CodeRefused {
		t.Fatalf("before the reload, %s: %v, want refused", newDst, err)
	}

	al, err := ParseAllowList([]string{newDst})
	if err != nil {
		t.Fatal(err)
	}
	r.agent.SetAllow(al)
	if got := r.agent.Allow(); len(got) != 1 || got[0].String() != newDst {
		t.Fatalf("Allow() after SetAllow: %v", got)
	}
	if n := value(m.allowRules); n != 1 {
		t.Errorf("allow_rules %v after the reload, want 1", n)
	}
	// The removed rule's series are gone; the new one's start at zero.
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if body := rec.Body.String(); strings.Contains(body, oldDst) ||
		!strings.Contains(body, `ftpsgate_agent_rule_streams_total{result="connected",rule="`+newDst+`"} 0`+"\n") {
		t.Errorf("rule series after the reload:\n%s", body)
	}
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), oldDst, netipAddr("")); !errors.As(err, &re) || re.Code != CodeRefused {
		t.Fatalf("after the reload, %s: %v, want refused", oldDst, err)
	}
	c, err := h.Dialer("lan").DialBackend(dialCtx(t), newDst, netipAddr(""))
	if err != nil {
		t.Fatalf("after the reload, %s: %v", newDst, err)
	}
	echoOnce(t, c)
	echoOnce(t, held) // the stream from before the reload still relays
}

// TestAgentDrain: at shutdown the agent refuses new sessions' streams
// (`draining`: the Hub then sends it none), /healthz says
// draining, a stream relaying goes on until it ends, and then the agent
// stops without waiting for the rest of its grace; with a short grace, a
// stream still open is cut when the grace is over.
func TestAgentDrain(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	dst := echoServer(t)
	cfg := agentConfig(p, leaf, gw, "lan", "a", dst)
	cfg.ShutdownGrace = 20 * time.Second
	r := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	held, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	waitValue(t, "open streams", func() float64 { return float64(r.agent.open.Load()) }, 1)

	r.cancel()
	waitHealth(t, r.agent, http.StatusServiceUnavailable, "draining")
	waitLog(t, r.log, "waiting for the streams relaying now")
	var re *RefusedError
	if c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr("")); err == nil {
		c.Close()
		t.Fatal("a new stream on a draining agent")
	} else if !errors.As(err, &re) || re.Code != CodeDraining {
		t.Fatalf("dial while draining: %v, want refused draining", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := h.Dialer("lan").DialBackend(ctx, dst, netipAddr("")); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("the next dial: %v, want ErrNoAgent (the draining agent is not tried again)", err)
	}
	echoOnce(t, held) // relays, then closes
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop once its last stream ended")
	}
	if strings.Contains(r.log.String(), "cutting the streams") {
		t.Errorf("a stream was cut:\n%s", r.log)
	}

	// A short grace ends a stream that does not end by itself.
	cfg.ShutdownGrace = 200 * time.Millisecond
	r2 := startAgent(t, cfg)
	waitAgents(t, h, "lan", 1)
	stuck, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	waitValue(t, "open streams", func() float64 { return float64(r2.agent.open.Load()) }, 1)
	start := time.Now()
	r2.cancel()
	select {
	case <-r2.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop at the end of its grace")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("stopped after %v, before its grace", d)
	}
	waitLog(t, r2.log, "shutdown_grace is over: cutting the streams still open")
	_ = stuck.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(stuck); isTimeout(err) {
		t.Error("the stream still open at the end of the grace was not ended")
	}
}

// TestDrainingAgentSkipped: while an agent drains (a stream still relaying
// through it), the gateway sends new streams to the group's other agent,
// even though the draining one has fewer streams open.
func TestDrainingAgentSkipped(t *testing.T) {
	h, a, b, dst := twoAgents(t)
	var held []net.Conn
	for range 3 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitValue(t, "streams", func() float64 { return float64(a.agent.open.Load() + b.agent.open.Load()) }, 3)
	// The agent with one stream drains; the other has two.
	draining := a
	if a.agent.open.Load() != 1 {
		draining = b
	}
	draining.cancel()
	waitHealth(t, draining.agent, http.StatusServiceUnavailable, "draining")
	for i := range 4 {
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(""))
		if err != nil {
			t.Fatalf("dial %d while an agent drains: %v", i, err)
		}
		echoOnce(t, c)
	}
	for _, c := range held {
		echoOnce(t, c)
	}
	// The admin API shows it draining, the other one up.
	for _, ai := range h.AgentsOf("lan") {
		want := AgentUp
		if ai.Name == draining.agent.conf().Name {
			want = AgentDraining
		}
		if ai.State != want {
			t.Errorf("AgentsOf: %s is %q, want %q", ai.Name, ai.State, want)
		}
	}
}

// slowRefusalLog is a log writer that takes its time over a refused
// stream's line.
type slowRefusalLog struct{ testproc.SyncBuffer }

func (w *slowRefusalLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("stream refused")) {
		time.Sleep(200 * time.Millisecond)
	}
	return w.SyncBuffer.Write(p)
}

// TestRefusalLoggedFirst: the agent logs a refused stream before the
// gateway hears the refusal, so what the gateway reports, the agent's log
// already holds, however slow its log is (the refusal was written first,
// and the e2e test reading both logs found the agent's line missing).
func TestRefusalLoggedFirst(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.Nop())
	dst, other := echoServer(t), echoServer(t)
	var log slowRefusalLog
	startAgentLog(t, agentConfig(p, leaf, gw, "lan", "a", dst), &log)
	waitAgents(t, h, "lan", 1)
	var re *RefusedError
	if _, err := h.Dialer("lan").DialBackend(dialCtx(t), other, netipAddr("")); !errors.As(err, &re) || re.Code != CodeRefused {
		t.Fatalf("%s: %v, want refused", other, err)
	}
	if !strings.Contains(log.String(), `"destination":"`+other+`"`) {
		t.Fatalf("the gateway heard the refusal before the agent logged it:\n%s", log.String())
	}
}
