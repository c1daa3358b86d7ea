package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

const agentsGateway = `listeners: [{name: a, address: "127.0.0.1:2121", tls: explicit}]
backend: {address: "10.0.0.5:21", via: %s}
agents:
  listen: "127.0.0.1:0"
  max_streams: %d
  groups:
    lan: {pins: [%s]}
`

func TestAgentsConfig(t *testing.T) {
	pin := "sha256/" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	cfg, err := loadFile(writeConfig(t, fmt.Sprintf(agentsGateway, "lan", 8, pin)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.proxy.Backend.Via != "lan" || cfg.agents == nil || len(cfg.agents.hub.Groups["lan"]) != 1 || cfg.agents.hub.MaxStreams != 8 {
		t.Fatalf("agents section not built: via %q, %+v", cfg.proxy.Backend.Via, cfg.agents)
	}
	for _, tc := range []struct{ text, key string }{
		{fmt.Sprintf(agentsGateway, "dmz", 8, pin), "backend.via"},
		{fmt.Sprintf(agentsGateway, "lan", 0, pin), "agents.max_streams"},
		{fmt.Sprintf(agentsGateway, "lan", 8, "nonsense"), "agents.groups.lan.pins[0]"},
		{fmt.Sprintf(agentsGateway, "lan", 8, ""), "agents.groups.lan.pins"},
		{"listeners: [{name: a, address: \"127.0.0.1:2121\", tls: explicit}]\nbackend: {address: \"10.0.0.5:21\", via: lan}\n", "backend.via"},
		// Each entry of backends is checked too.
		{"listeners: [{name: a, address: \"127.0.0.1:2121\", tls: explicit}]\nbackends: [{name: x, address: \"10.0.0.5:21\"}, {name: y, address: \"10.0.0.6:21\", via: lan}]\nrouting: {default: x}\n", "backends[1].via"},
		{strings.Replace(fmt.Sprintf(agentsGateway, "lan", 8, pin), "backend: {address: \"10.0.0.5:21\", via: lan}", "backends: [{name: x, address: \"10.0.0.5:21\", via: dmz}]\nrouting: {default: x}", 1), "backends[0].via"},
	} {
		_, err := loadFile(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("want an error naming %s, got %v", tc.key, err)
		}
	}
}

func TestAgentConfigFile(t *testing.T) {
	dir := t.TempDir()
	files, err := testpki.WriteServer(dir, "agent test")
	if err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("%x", sha256.Sum256([]byte("x")))
	good := fmt.Sprintf("gateways: [\"127.0.0.1:55990\"]\ngroup: lan\ncert_file: %s\nkey_file: %s\ngateway_pins: [%s]\nallow: [\"10.0.0.5:21\", \"10.0.0.5:40000-40100\"]\n", files.CertFile, files.KeyFile, pin)
	l, err := loadAgent(writeConfig(t, good))
	if err != nil {
		t.Fatal(err)
	}
	cfg := l.agent
	if len(cfg.Allow) != 2 || cfg.Group != "lan" || len(cfg.GatewayPins) != 1 || cfg.MaxStreams != 256 {
		t.Fatalf("%+v", cfg)
	}
	// An empty allow list loads (the agent then refuses every stream).
	if _, err := loadAgent(writeConfig(t, strings.Replace(good, "allow: [\"10.0.0.5:21\", \"10.0.0.5:40000-40100\"]", "allow: []", 1))); err != nil {
		t.Fatalf("an empty allow list: %v", err)
	}
	_, err = loadAgent(writeConfig(t, "allow: [\"10.0.0.5\"]\nbackoff: {min: 10s, max: 1s}\nmax_streams: 0\n"))
	for _, key := range []string{"gateways", "group", "cert_file", "gateway_pins", "allow[0]", "backoff.max", "max_streams"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("want an error naming %s, got %v", key, err)
		}
	}
	if l, err := loadAgent(writeConfig(t, good+"source_address: 10.0.0.9\n")); err != nil || l.agent.Source.String() != "10.0.0.9" {
		t.Fatalf("source_address 10.0.0.9: %v", err)
	}
	for _, bad := range []string{"10.0.0", "0.0.0.0", "::ffff:10.0.0.9", "fe80::1%eth0", "224.0.0.1"} {
		if _, err := loadAgent(writeConfig(t, good+"source_address: \""+bad+"\"\n")); err == nil || !strings.Contains(err.Error(), "source_address:") {
			t.Errorf("source_address %s: %v", bad, err)
		}
	}
	if _, err := loadAgent(writeConfig(t, good+"unknown_key: 1\n")); err == nil {
		t.Error("an unknown key was accepted")
	}
}

// The example agent.yaml parses; only its certificate files do not exist
// here.
func TestAgentExampleConfig(t *testing.T) {
	_, err := loadAgent(filepath.Join("..", "..", "configs", "agent.yaml"))
	for _, line := range strings.Split(errString(err), "\n") {
		if line != "" && !strings.HasPrefix(line, "cert_file:") {
			t.Errorf("configs/agent.yaml: %s", line)
		}
	}
}

// TestComposeAgents: the gateway built from an agents: section listens for
// agents with the edge certificate when agents.cert_file is empty, an agent
// pinning that certificate joins its group, and the tunnel metrics are on
// the gateway's registry.
// agentFixture is a gateway's edge certificate on disk and an agent CA.
type agentFixture struct {
	edge *testpki.Files
	ca   *testpki.CA
}

func newAgentFixture(t *testing.T, name string) *agentFixture {
	t.Helper()
	edge, err := testpki.WriteServer(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := testpki.NewCA("agents")
	if err != nil {
		t.Fatal(err)
	}
	return &agentFixture{edge: edge, ca: ca}
}

// leaf is an agent's certificate from the fixture's CA.
func (f *agentFixture) leaf(t *testing.T, name string) *testpki.Leaf {
	t.Helper()
	l, err := f.ca.Client(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// pinText is l's pin as the configuration writes it.
func pinText(l *testpki.Leaf) string {
	p := sha256.Sum256(l.Cert.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(p[:])
}

// runAgent runs an agent of group lan with leaf, dialling listen and
// pinning the fixture's edge certificate, until the end of the test.
func (f *agentFixture) runAgent(t *testing.T, listen string, leaf *testpki.Leaf) {
	t.Helper()
	edgeCert, err := tls.LoadX509KeyPair(f.edge.CertFile, f.edge.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := x509.ParseCertificate(edgeCert.Certificate[0])
	gwPin := sha256.Sum256(x.RawSubjectPublicKeyInfo)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{listen}, Certificate: leaf.TLS, GatewayPins: [][32]byte{gwPin}, Group: "lan",
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, zerolog.Nop())
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestComposeAgents(t *testing.T) {
	fx := newAgentFixture(t, "compose agents")
	edge, leaf := fx.edge, fx.leaf(t, "agent-1")
	const listen = "127.0.0.1:0" // the hub's port: d.hubAddr
	text := fmt.Sprintf(`listeners: [{name: a, address: "127.0.0.1:0", tls: implicit}]
tls: {cert_file: %s, key_file: %s}
backend: {address: "10.0.0.5:21", via: lan}
agents:
  listen: %q
  groups:
    lan: {pins: [%q]}
log: {level: error}
`, edge.ChainFile, edge.KeyFile, listen, pinText(leaf))
	d, _ := composeFile(t, writeConfig(t, text))
	fx.runAgent(t, d.hubAddr.String(), leaf)

	deadline := time.Now().Add(5 * time.Second)
	for d.hub.Agents("lan") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not join through the edge certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fams, err := d.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() == "ftpsgate_tunnel_agents" {
			for _, m := range f.GetMetric() {
				found = found || m.GetGauge().GetValue() == 1
			}
		}
	}
	if !found {
		t.Fatal("no ftpsgate_tunnel_agents{group=\"lan\"} 1 on the gateway's registry")
	}
}

// TestAgentsPinInSeveralGroups: a pin listed in two groups is a warning
// naming both; pins of one group each are quiet.
func TestAgentsPinInSeveralGroups(t *testing.T) {
	pin := func(b byte) string { return "sha256/" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	conf := `listeners: [{name: a, address: "127.0.0.1:2121", tls: explicit}]
backend: {address: "10.0.0.5:21", via: lan}
agents:
  listen: "127.0.0.1:0"
  groups:
    lan: {pins: [%s, %s]}
    dmz: {pins: [%s]}
`
	cfg, err := loadFile(writeConfig(t, fmt.Sprintf(conf, pin(1), pin(2), pin(3))))
	if err != nil {
		t.Fatal(err)
	}
	_, ws := warnings(cfg, 4096)
	for _, w := range ws {
		if w.Key == "agents.groups" {
			t.Errorf("distinct pins: %s", w)
		}
	}
	cfg, err = loadFile(writeConfig(t, fmt.Sprintf(conf, pin(1), pin(2), pin(2))))
	if err != nil {
		t.Fatal(err)
	}
	_, ws = warnings(cfg, 4096)
	var got []string
	for _, w := range ws {
		if w.Key == "agents.groups" {
			got = append(got, w.String())
		}
	}
	want := "agents.groups: pin " + pin(2) + " is listed in groups dmz, lan: that agent may join any of these groups"
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want [%q]", got, want)
	}
}

// TestAgentValidateWarnings: ftpsgate agent --validate prints a warning
// line per wide allow rule, DNS name and CA without pins.
func TestAgentValidateWarnings(t *testing.T) {
	dir := t.TempDir()
	files, err := testpki.WriteServer(dir, "agent test")
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("gateways: [\"127.0.0.1:55990\"]\ngroup: lan\ncert_file: %s\nkey_file: %s\ngateway_ca_file: %s\nallow: [\"10.0.0.5:21\", \"10.0.0.0/30:21\", \"ftp.lan:21\"]\n",
		files.CertFile, files.KeyFile, files.CAFile)
	var out strings.Builder
	if code := cmdAgent([]string{"--config", writeConfig(t, conf), "--validate"}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{
		"configuration ok\n",
		"warning: allow[1]: 10.0.0.0/30:21 reaches 4 addresses; a compromised gateway can connect to all of them\n",
		"warning: allow[2]: ftp.lan:21 names a DNS name: the agent connects wherever the LAN's resolver points it\n",
		"warning: gateway_ca_file: set without gateway_pins: the agent trusts any certificate this CA issues for the gateway's name\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "allow[0]") {
		t.Errorf("a one-host rule warned:\n%s", out.String())
	}
}
