package main

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// agentsFile is the gateway's agents: section, the listener reverse-connect
// agents dial (see docs/agent.md).
type agentsFile struct {
	Listen           string `mapstructure:"listen"`
	CertFile         string `mapstructure:"cert_file"`
	KeyFile          string `mapstructure:"key_file"`
	MaxStreams       int    `mapstructure:"max_streams"`
	WaitForAgent     string `mapstructure:"wait_for_agent"`
	KeepAlive        string `mapstructure:"keepalive"`
	HandshakeTimeout string `mapstructure:"handshake_timeout"`
	Groups           map[string]struct {
		Pins []string `mapstructure:"pins"`
	} `mapstructure:"groups"`
}

// agentsSetup is the checked agents: section; nil when agents.listen is
// empty (no agent listener).
type agentsSetup struct {
	listen            string
	certFile, keyFile string // empty: the edge certificate
	hub               tunnel.HubConfig
}

// buildAgents checks the agents: section and the backends' via keys
// (vias: the key, backend.via or backends[i].via, of each one set).
func buildAgents(p *problems, f agentsFile, vias map[string]string) *agentsSetup {
	if f.Listen == "" {
		if len(f.Groups) > 0 {
			p.add("agents.listen", errors.New("agents.groups is set but no listen address"))
		}
		for key, via := range vias {
			p.add(key, fmt.Errorf("%q: no agents.listen, so no agent group can be reached", via))
		}
		return nil
	}
	s := &agentsSetup{listen: f.Listen, certFile: f.CertFile, keyFile: f.KeyFile}
	if (f.CertFile == "") != (f.KeyFile == "") {
		p.add("agents.cert_file", errors.New("set both agents.cert_file and agents.key_file, or neither (the edge certificate)"))
	}
	if _, _, err := net.SplitHostPort(f.Listen); err != nil {
		p.add("agents.listen", fmt.Errorf("%q is not a host:port", f.Listen))
	}
	dur := func(key, v string) time.Duration {
		d, err := time.ParseDuration(v)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		p.add(key, err)
		return d
	}
	h := tunnel.HubConfig{
		MaxStreams:       f.MaxStreams,
		WaitForAgent:     dur("agents.wait_for_agent", f.WaitForAgent),
		KeepAlive:        dur("agents.keepalive", f.KeepAlive),
		HandshakeTimeout: dur("agents.handshake_timeout", f.HandshakeTimeout),
		Groups:           map[string][][32]byte{},
		// The certificate is loaded by compose; Validate wants one.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("not loaded") },
	}
	if f.MaxStreams <= 0 {
		p.add("agents.max_streams", errors.New("must be positive"))
	}
	for name, g := range f.Groups {
		var pins [][32]byte
		for i, s := range g.Pins {
			pin, err := local.ParsePin(s)
			if err != nil {
				p.add(fmt.Sprintf("agents.groups.%s.pins[%d]", name, i), err)
				continue
			}
			pins = append(pins, pin)
		}
		h.Groups[name] = pins
	}
	p.addNew(confkey.Under("agents", h.Validate()))
	for key, via := range vias {
		if _, ok := f.Groups[via]; !ok {
			p.add(key, fmt.Errorf("%q names no group in agents.groups", via))
		}
	}
	s.hub = h
	return s
}

// warnings: a pin listed in several groups lets its agent join any of
// them (and so carry the backends of each). Nil s: no agents: section.
func (s *agentsSetup) warnings() []proxy.Warning {
	if s == nil {
		return nil
	}
	names := make([]string, 0, len(s.hub.Groups))
	for name := range s.hub.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	var pins [][32]byte
	in := map[[32]byte][]string{}
	for _, name := range names {
		for _, pin := range s.hub.Groups[name] {
			if g := in[pin]; len(g) == 0 || g[len(g)-1] != name {
				if len(g) == 0 {
					pins = append(pins, pin)
				}
				in[pin] = append(g, name)
			}
		}
	}
	var ws []proxy.Warning
	for _, pin := range pins {
		if g := in[pin]; len(g) > 1 {
			ws = append(ws, proxy.Warning{Key: "agents.groups", Text: fmt.Sprintf(
				"pin sha256/%s is listed in groups %s: that agent may join any of these groups",
				base64.StdEncoding.EncodeToString(pin[:]), strings.Join(g, ", "))})
		}
	}
	return ws
}

// loadCert loads agents.cert_file and key_file (set), at start and on
// each SIGHUP.
func (s *agentsSetup) loadCert() (func(*tls.ClientHelloInfo) (*tls.Certificate, error), error) {
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return nil, fmt.Errorf("agents.cert_file: %w", err)
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, nil
}

// startHub listens on agents.listen and serves agents until the returned
// Hub is closed; each group becomes a tunnel the backend can name in
// backend.via. The listener's certificate is agents.cert_file, or the
// edge's (getCert) when there is none. It returns the listener's address
// too (a port 0 resolved).
func startHub(s *agentsSetup, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), reg prometheus.Registerer, log zerolog.Logger) (*tunnel.Hub, net.Addr, []proxy.Option, error) {
	cfg := s.hub
	cfg.GetCertificate = getCert
	if s.certFile != "" {
		var err error
		if cfg.GetCertificate, err = s.loadCert(); err != nil {
			return nil, nil, nil, err
		}
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("agents.listen: %w", err)
	}
	hub := tunnel.NewHub(cfg, log.With().Str("component", "agents").Logger(), tunnel.NewMetrics(reg))
	go func() { _ = hub.Serve(ln) }()
	log.Info().Str("address", ln.Addr().String()).Int("groups", len(cfg.Groups)).Msg("agent listener up")
	var opts []proxy.Option
	for name := range cfg.Groups {
		opts = append(opts, proxy.WithTunnel(name, hub.Dialer(name)))
	}
	return hub, ln.Addr(), opts, nil
}
