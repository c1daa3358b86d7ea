package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/viper"

	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// agentFile mirrors agent.yaml, the reverse-connect agent's configuration.
type agentFile struct {
	Gateways          []string `mapstructure:"gateways"`
	Group             string   `mapstructure:"group"`
	Name              string   `mapstructure:"name"`
	CertFile          string   `mapstructure:"cert_file"`
	KeyFile           string   `mapstructure:"key_file"`
	GatewayPins       []string `mapstructure:"gateway_pins"`
	GatewayCAFile     string   `mapstructure:"gateway_ca_file"`
	GatewayServerName string   `mapstructure:"gateway_server_name"`
	Allow             []string `mapstructure:"allow"`
	MaxStreams        int      `mapstructure:"max_streams"`
	SourceAddress     string   `mapstructure:"source_address"`
	DialTimeout       string   `mapstructure:"dial_timeout"`
	HandshakeTimeout  string   `mapstructure:"handshake_timeout"`
	KeepAlive         string   `mapstructure:"keepalive"`
	Backoff           struct {
		Min string `mapstructure:"min"`
		Max string `mapstructure:"max"`
	} `mapstructure:"backoff"`
	ShutdownGrace string         `mapstructure:"shutdown_grace"`
	Admin         agentAdminFile `mapstructure:"admin"`
	Log           logConfig      `mapstructure:"log"`
}

// agentLoaded is agent.yaml, checked: the tunnel's part, the logger's and
// the admin endpoint's.
type agentLoaded struct {
	agent tunnel.AgentConfig
	log   logConfig
	admin agentAdmin
}

// warnings are the agent's weakened settings: the tunnel's (wide allow
// rules, a CA without pins) and an admin endpoint reachable from the
// network.
func (l *agentLoaded) warnings() []tunnel.Warning {
	return append(l.agent.Warnings(), l.admin.warnings()...)
}

// agentDefaults are agent.yaml's defaults.
var agentDefaults = map[string]any{
	"gateways": []string{}, "group": "", "name": "", "cert_file": "", "key_file": "",
	"gateway_pins": []string{}, "gateway_ca_file": "", "gateway_server_name": "",
	"allow": []string{}, "max_streams": 256, "source_address": "", "dial_timeout": "10s", "handshake_timeout": "10s",
	"keepalive": "15s", "backoff.min": "500ms", "backoff.max": "30s", "shutdown_grace": "30s",
	"admin.address": "", "admin.token_file": "", "log.level": "info", "log.format": "",
}

const agentHelp = `Runs the reverse-connect agent: inside the LAN, it dials out to the
gateway's agents.listen over mutual TLS and connects the gateway's streams
to the destinations its allow list names (nothing else: an empty allow list
refuses everything). See docs/agent.md.`

func cmdAgent(args []string, stderr io.Writer) int {
	fs := newFlagSet("agent --config FILE", agentHelp, stderr)
	config := fs.String("config", "", "agent configuration file (YAML)")
	check := fs.Bool("validate", false, "check the configuration and exit")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *config == "" {
		fmt.Fprintln(stderr, "ftpsgate agent: --config FILE is required")
		return 2
	}
	l, err := loadAgent(*config)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate agent: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintln(stderr, "configuration ok")
		for _, w := range l.warnings() {
			fmt.Fprintln(stderr, "warning: "+w.String())
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return runAgent(ctx, *config, l, os.Stderr)
}

// runAgent runs the agent until ctx ends (SIGTERM), then drains it: the
// admin endpoint (when configured) answers until the last stream ended.
// SIGHUP reloads path (reloadAgent says which keys).
func runAgent(ctx context.Context, path string, l *agentLoaded, out *os.File) int {
	level := newLevelGate(l.log, out)
	log := level.logger()
	for _, w := range l.warnings() {
		log.Warn().Str("key", w.Key).Msg("weakened setting: " + w.String())
	}
	cfg := l.agent
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := tunnel.NewAgentMetrics(reg, cfg.Gateways)
	ag := tunnel.NewAgent(cfg, log, tunnel.WithAgentMetrics(m))
	var api *agentAPI
	if l.admin.address != "" {
		var err error
		if api, err = startAgentAPI(l.admin, ag, reg, log); err != nil {
			log.Error().Err(err).Str("key", "admin.address").Msg("the agent's admin endpoint cannot start")
			return 1
		}
		defer api.shutdown()
		log.Info().Str("address", api.addr()).Msg("agent admin endpoint listening: GET /healthz, GET /metrics")
	}
	hupCtx, stopHUP := context.WithCancel(context.Background())
	defer stopHUP()
	reloadAgentOnHUP(hupCtx, path, ag, level, m, log)
	log.Info().Str("version", versionString()).Strs("gateways", cfg.Gateways).Str("group", cfg.Group).
		Strs("allow", allowStrings(cfg.Allow)).Msg("ftpsgate agent starting")
	_ = ag.Run(ctx)
	log.Info().Msg("ftpsgate agent stopped")
	return 0
}

// loadAgent reads and checks agent.yaml (no environment overrides: the
// gateway refuses FTPSGATE_ variables that name none of its keys).
func loadAgent(path string) (*agentLoaded, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	for k, d := range agentDefaults {
		v.SetDefault(k, d)
	}
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f agentFile
	if err := v.UnmarshalExact(&f); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	cfg, admin, err := buildAgentConfig(f)
	if err != nil {
		return nil, err
	}
	return &agentLoaded{agent: cfg, log: f.Log, admin: admin}, nil
}

func buildAgentConfig(f agentFile) (tunnel.AgentConfig, agentAdmin, error) {
	var p problems
	c := tunnel.AgentConfig{Gateways: f.Gateways, Group: f.Group, Name: f.Name, MaxStreams: f.MaxStreams, ServerName: f.GatewayServerName}
	if f.CertFile == "" || f.KeyFile == "" {
		p.add("cert_file", errors.New("cert_file and key_file are required: the gateway pins the agent's certificate"))
	} else if cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile); err != nil {
		p.add("cert_file", err)
	} else {
		c.Certificate = cert
	}
	for i, s := range f.GatewayPins {
		pin, err := local.ParsePin(s)
		p.add(fmt.Sprintf("gateway_pins[%d]", i), err)
		c.GatewayPins = append(c.GatewayPins, pin)
	}
	if f.GatewayCAFile != "" {
		pem, err := os.ReadFile(f.GatewayCAFile)
		pool := x509.NewCertPool()
		if err == nil && !pool.AppendCertsFromPEM(pem) {
			err = errors.New("no PEM certificate in it")
		}
		p.add("gateway_ca_file", err)
		c.GatewayCA = pool
	}
	var err error
	if c.Allow, err = tunnel.ParseAllowList(f.Allow); err != nil {
		p.add("", err) // "allow[i]: ..."
	}
	dur := func(key, s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		p.add(key, err)
		return d
	}
	if f.SourceAddress != "" {
		if c.Source, err = netip.ParseAddr(f.SourceAddress); err != nil {
			p.add("source_address", errors.New("not an IP address"))
		}
	}
	c.DialTimeout = dur("dial_timeout", f.DialTimeout)
	c.HandshakeTimeout = dur("handshake_timeout", f.HandshakeTimeout)
	c.KeepAlive = dur("keepalive", f.KeepAlive)
	c.BackoffMin = dur("backoff.min", f.Backoff.Min)
	c.BackoffMax = dur("backoff.max", f.Backoff.Max)
	c.ShutdownGrace = dur("shutdown_grace", f.ShutdownGrace)
	admin, err := buildAgentAdmin(f.Admin)
	p.add("admin", err)
	if c.BackoffMax < c.BackoffMin {
		p.add("backoff.max", errors.New("shorter than backoff.min"))
	}
	if f.MaxStreams <= 0 {
		p.add("max_streams", errors.New("must be positive"))
	}
	if _, err := parseLevel(f.Log.Level); err != nil {
		p.add("log.level", err)
	}
	for i, g := range f.Gateways {
		if _, ok := ownAddr(g); !ok {
			p.add(fmt.Sprintf("gateways[%d]", i), fmt.Errorf("%q is not a host:port", g))
		}
	}
	p.addNew(c.Validate())
	return c, admin, p.err()
}

func allowStrings(a tunnel.AllowList) []string {
	out := make([]string, len(a))
	for i, r := range a {
		out[i] = r.String()
	}
	return out
}
