package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// The agent phase: what the reverse-connect agent costs. Two fresh
// gateways alike (FTPS→FTPS, in front of the FTPS vsftpd) but for the
// path to the backend: one dials it, the other reaches it only through an
// `ftpsgate agent` on loopback (backend.via, a yamux stream over mutual
// TLS per backend connection). Through both, the sessions phase's full
// session one at a time and 8 in parallel, and a curl download and upload
// of the big file; the quotient column is agent ÷ direct. The agent
// column's CPU is the gateway's and the agent's together.
//
// A third gateway alike, "hop", reaches vsftpd through a plain TCP relay
// process in the agent's place (hoprelay.go: no TLS of its own, no
// multiplexing, user-space copies through 1 MiB): the floor of any extra
// process on the path on this machine, before the agent's TLS and yamux.
// Its CPU is the gateway's and the relay's together.

// The agent table's columns.
const (
	agDirect = "dial"
	agHop    = "hop"
	agVia    = "agent"
)

// hopHost is the loopback address the hop relay listens on (vsftpd's
// ports, forwarded to 127.0.0.1): the hop gateway's backend host, so that
// the gateway's data connections to it cross the relay too.
const hopHost = "127.0.0.2"

// agentBlocks are the passive ranges of the three gateways: the features
// phase's, whose gateways have stopped by then.
var agentBlocks = map[string]portBlock{agDirect: featureBlocks[0], agHop: featureBlocks[1], agVia: featureBlocks[2]}

// agentSideRow is the row suffix of the CPU of the process beside the
// gateway (target.side), per column.
var agentSideRow = map[string]string{agHop: "hopcpu", agVia: "agentcpu"}

func phaseAgent(ctx context.Context, e *env, targets []*target) {
	tab := newTable([]string{agDirect, agHop, agVia}, map[string]string{
		agDirect: "gateway dials vsftpd", agHop: "through a plain TCP relay process", agVia: "through ftpsgate agent",
	}, []quotient{{agHop, agDirect, "hop ÷ dial", false}, {agVia, agDirect, "agent ÷ dial", false}})
	tab.noLegend = true
	tab.title = "agent: the reverse-connect agent, and a plain TCP relay process in its place, against the gateway dialling the backend (FTPS→FTPS vsftpd, same run)"
	e.feat = append(e.feat, tab)
	sec := fmt.Sprintf("sessions: AUTH TLS, USER, PASS, PBSZ, PROT P, EPSV, LIST, QUIT (Go client), FTPS→FTPS vsftpd, median of %s of %s",
		plural(e.agentRounds, "round"), e.agentFor)
	for _, par := range []int{1, 8} {
		what := "one at a time"
		if par > 1 {
			what = fmt.Sprintf("%d in parallel", par)
		}
		p := fmt.Sprintf("agent/sess/%d/", par)
		tab.define(metric{id: p + "rate", label: what + ": sessions/s", prec: 1, higher: true, section: sec})
		tab.define(metric{id: p + "p50", label: what + ": latency p50, ms", prec: 1, section: sec})
		tab.define(metric{id: p + "cpu", label: what + ": CPU ms/session", prec: 2, section: sec})
	}
	sec = fmt.Sprintf("relay: curl, %s file, FTPS→FTPS vsftpd, median of %s", human(e.bigSize), plural(e.agentRounds, "round"))
	for _, d := range []string{"download", "upload"} {
		tab.define(metric{id: "agent/" + d + "/mbps", label: "curl " + d + ", MB/s", prec: 0, higher: true, section: sec})
		tab.define(metric{id: "agent/" + d + "/cpu", label: "curl " + d + ", CPU s/GiB", prec: 2, section: sec})
		tab.define(metric{id: "agent/" + d + "/machcpu", label: "curl " + d + ", the whole machine's CPU, s/GiB", prec: 2, section: sec})
		tab.define(metric{id: "agent/" + d + "/hopcpu", label: "curl " + d + ", of which the hop relay's, CPU s/GiB", prec: 2, section: sec})
		tab.define(metric{id: "agent/" + d + "/agentcpu", label: "curl " + d + ", of which the agent's, CPU s/GiB", prec: 2, section: sec})
	}
	tab.footer = append(tab.footer, "CPU: the gateway's; in the hop column, the gateway's and the relay's together, in the agent column the gateway's and the agent's (the relay's and the agent's alone on rows of their own). The whole machine's CPU: what every CPU spent busy (/proc/stat) from just before curl started to just after it ended, over the file's size: curl, the gateway, the relay or the agent, vsftpd and anything else that ran; when the transfer keeps the machine's cores busy, the throughput's quotient falls with this row's.",
		"The hop column's gateway reaches vsftpd through a plain TCP relay process on "+hopHost+" (vsftpd's control port and passive range, each forwarded to the same port on 127.0.0.1; no TLS of its own, no multiplexing, read()/write() through 1 MiB, one goroutine per direction): what any process in the agent's place costs on this machine, before the agent's TLS and multiplexing.")

	var backend string
	for _, t := range targets {
		if t.key == tDirect && t.na == "" {
			backend = t.addr
		}
	}
	if backend == "" {
		tab.missingAll("the FTPS vsftpd is not running (see the main table)")
		return
	}
	ts := []*target{{key: agDirect}, {key: agHop}, {key: agVia}}
	for _, t := range ts {
		if err := checkBindable(agentBlocks[t.key]); err != nil {
			t.na = err.Error()
		}
	}
	if ts[0].na == "" {
		if g, err := startGateway(ctx, e, "ftpsgate-dial", backend, "explicit", agentBlocks[agDirect]); err != nil {
			ts[0].na = "gateway did not start: " + oneLine(err)
		} else {
			defer g.proc.stop()
			ts[0].addr, ts[0].cpu = g.Addr, processCPU(g.proc.pid())
		}
	}
	var relayed func() hopCount
	if ts[1].na == "" {
		var err error
		if relayed, err = startHop(ctx, e, backend, ts[1]); err != nil {
			ts[1].na = oneLine(err)
		}
	}
	if ts[2].na == "" {
		if err := startAgentPair(ctx, e, backend, ts[2]); err != nil {
			ts[2].na = oneLine(err)
		}
	}
	for _, t := range ts {
		if t.na != "" {
			logf("agent: %s: n/a: %s", t.key, t.na)
		}
	}
	// The agent phase's own pauses around each measurement: it takes
	// 2×2×rounds of them.
	defer func(d time.Duration) { settleTime = d }(settleTime)
	settleTime = 100 * time.Millisecond
	session := func(ctx context.Context, i int) (time.Duration, error) { return oneSession(ctx, e, ts[i].addr) }
	smoke(ctx, ts, "session", session)
	f := newRoundFigures()
	for round := range e.agentRounds {
		if ctx.Err() != nil {
			break
		}
		agentRound(ctx, e, f, ts, round, relayed)
	}
	if relayed != nil {
		c := relayed()
		logf("agent: the hop relay carried %d control and %d data connections, %s through its passive ports", c.ctrlConns, c.dataConns, human(c.dataBytes))
	}
	ids := []string{}
	for _, m := range tab.metrics {
		ids = append(ids, m.id)
	}
	for _, d := range []string{"download", "upload"} {
		tab.na("agent/"+d+"/agentcpu", agDirect, "no agent")
		tab.na("agent/"+d+"/agentcpu", agHop, "no agent")
		tab.na("agent/"+d+"/hopcpu", agDirect, "no relay")
		tab.na("agent/"+d+"/hopcpu", agVia, "no relay")
	}
	spread := []string{"agent/sess/1/rate", "agent/sess/8/rate", "agent/download/mbps", "agent/upload/mbps"}
	labels := map[string]string{"agent/sess/1/rate": "sessions/s one at a time", "agent/sess/8/rate": "8 in parallel",
		"agent/download/mbps": "download MB/s", "agent/upload/mbps": "upload MB/s"}
	if line := f.fill(tab, ts, ids, e.agentRounds, []string{agHop, agVia}, agDirect, spread, labels); line != "" {
		tab.footer = append(tab.footer, line)
	}
}

// startAgentPair starts a gateway with an agent listener whose backend is
// reached through group "bench", and one agent for it; t gets the
// gateway's address, both processes' CPU, and the agent's alone (side).
// The processes stop with the bench (stopAll).
func startAgentPair(ctx context.Context, e *env, backend string, t *target) error {
	dir := filepath.Join(e.dir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := testpki.NewCA("bench agents")
	if err != nil {
		return err
	}
	leaf, err := ca.Client("bench-agent")
	if err != nil {
		return err
	}
	certPath, keyPath := filepath.Join(dir, "agent.pem"), filepath.Join(dir, "agent.key")
	if err := testpki.WritePEM(certPath, 0o644, "CERTIFICATE", leaf.DER); err != nil {
		return err
	}
	if err := testpki.WritePEM(keyPath, 0o600, "PRIVATE KEY", leaf.KeyDER); err != nil {
		return err
	}
	agentPin := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	gwPin, err := pinOfFile(e.pki.CertFile)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	listen := loopback(port)
	extra := fmt.Sprintf("agents:\n  listen: %q\n  groups:\n    bench:\n      pins: [%q]\n", listen, "sha256/"+base64.StdEncoding.EncodeToString(agentPin[:]))
	// backend.via through the environment: the fixed YAML has its own
	// backend section.
	g, err := startGatewayEnv(ctx, e, "ftpsgate-agent", backend, "explicit", agentBlocks[agVia], extra, []string{"FTPSGATE_BACKEND_VIA=bench"})
	if err != nil {
		return fmt.Errorf("gateway did not start: %w", err)
	}
	_, bePort, _ := strings.Cut(backend, "127.0.0.1:")
	conf := fmt.Sprintf(`gateways: [%q]
group: bench
name: bench-agent
cert_file: %q
key_file: %q
gateway_pins: [%q]
allow: ["127.0.0.1:%s", "127.0.0.1:%d-%d"]
log: {level: warn, format: json}
`, listen, certPath, keyPath, gwPin, bePort, passiveBlocks[1].lo, passiveBlocks[1].hi)
	confPath := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return err
	}
	a, err := startProcess("ftpsgate-agent", filepath.Join(dir, "agent.log"), nil, e.gatewayBin, "agent", "--config", confPath)
	if err != nil {
		return err
	}
	// Up once the gateway logs the agent.
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(g.proc.logPath)
		if strings.Contains(string(b), `"agent connected"`) {
			break
		}
		if a.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the agent did not connect: %s", a.lastLogLine())
		}
		time.Sleep(20 * time.Millisecond)
	}
	gwCPU, agCPU := processCPU(g.proc.pid()), processCPU(a.pid())
	t.addr, t.cpu, t.side = g.Addr, sumCPU(gwCPU, agCPU), agCPU
	return nil
}

// sumCPU is the CPU of a and b together.
func sumCPU(a, b cpuMeter) cpuMeter {
	return func() (time.Duration, error) {
		x, err := a()
		if err != nil {
			return 0, err
		}
		y, err := b()
		return x + y, err
	}
}
