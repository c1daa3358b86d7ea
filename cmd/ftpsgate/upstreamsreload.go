package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// What SIGHUP reloads of the backends and the agents (docs/backends.md,
// docs/agent.md): the agents reloader runs first, so that the backends
// reloader checks each via against the groups as they now are.
//
//   - agents: the groups and their pins (tunnel.Hub.SetGroups: a removed
//     pin cuts its agent at once), then the listener's settings
//     (tunnel.Hub.SetConfig): cert_file and key_file (read again on each
//     SIGHUP, so a certificate rotated in place is picked up; empty: the
//     edge certificate, reloaded with the edge), max_streams,
//     wait_for_agent, handshake_timeout and keepalive, for the handshakes,
//     dials and tunnels that follow (keepalive: new tunnels only); the
//     tunnels up stay. A certificate that does not load keeps the one in
//     force and fails the reload, the rest applied. listen needs a
//     restart: when the file moves it, the rest is still applied (a
//     revocation must not wait for a restart) and the error says so.
//   - backend, backends, pools, routing: swapped whole
//     (proxy.Server.ReloadBackends); a bad set keeps the last good one.

// readConfigFile reads path's sections as SIGHUP does: each reloader
// takes its own section(s) and ignores the rest.
func readConfigFile(path string) (fileConfig, error) {
	v := newViper()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return fileConfig{}, fmt.Errorf("read %s: %w", path, err)
	}
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		return fileConfig{}, fmt.Errorf("configuration: %w", err)
	}
	return fc, nil
}

// agentsReloader re-reads the agents: section. hub is nil when the
// gateway started without one: a listener needs a restart.
type agentsReloader struct {
	path     string
	hub      *tunnel.Hub
	start    *agentsSetup                                         // the section the listener was started with
	edgeCert func(*tls.ClientHelloInfo) (*tls.Certificate, error) // without agents.cert_file
	log      zerolog.Logger
}

// Reload applies the file's groups, pins and settings to the running
// listener.
func (r *agentsReloader) Reload() error {
	fc, err := readConfigFile(r.path)
	if err != nil {
		return err
	}
	f := fc.Agents
	if r.hub == nil {
		if f.Listen != "" {
			return errors.New("agents.listen: the gateway started without an agent listener; starting one needs a restart")
		}
		return nil
	}
	var p problems
	s := buildAgents(&p, f, nil) // the backends reloader checks the vias
	if err := p.err(); err != nil {
		return err
	}
	if s == nil {
		r.hub.SetGroups(nil) // an agent cut is logged by the hub
		return errors.New("agents.listen: removed, but the agent listener stays open until a restart; every agent is refused meanwhile (no group left)")
	}
	r.hub.SetGroups(s.hub.Groups)
	logWarnings(r.log, s.warnings())
	var errs []error
	cfg := s.hub
	cfg.GetCertificate = r.edgeCert
	if s.certFile != "" {
		if cfg.GetCertificate, err = s.loadCert(); err != nil {
			errs = append(errs, fmt.Errorf("%w; the agent listener keeps the certificate in force (the other agents settings were applied)", err))
		}
	}
	r.hub.SetConfig(cfg) // a nil GetCertificate keeps the one in force
	if was, now := r.start.listen, s.listen; was != now {
		errs = append(errs, fmt.Errorf("agents.listen changed from %s to %s, which needs a restart: the agent listener stays on %s (the groups, pins and other agents settings were applied)", was, now, was))
	}
	return errors.Join(errs...)
}

// backendsReloader re-reads backend, backends, pools and routing and
// swaps them into the server.
type backendsReloader struct {
	path string
	srv  *proxy.Server
	hub  *tunnel.Hub // nil: no agent listener, so no via
	log  zerolog.Logger
}

// Reload checks the sections (each via against the hub's groups now) and
// swaps them in; a bad set keeps the last good one.
func (r *backendsReloader) Reload() error {
	fc, err := readConfigFile(r.path)
	if err != nil {
		return err
	}
	var p problems
	var c proxy.Config
	buildBackends(&p, &fc, &c)
	var groups []string
	if r.hub != nil {
		groups = r.hub.Groups()
	}
	vias := viaKeys(c)
	keys := make([]string, 0, len(vias))
	for k := range vias {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		if !slices.Contains(groups, vias[key]) {
			p.add(key, fmt.Errorf("%q names no agent group of the running gateway (agents.groups)", vias[key]))
		}
	}
	if err := p.err(); err != nil {
		return err
	}
	var tunnels map[string]proxy.Dialer
	if r.hub != nil {
		tunnels = map[string]proxy.Dialer{}
		for _, g := range groups {
			tunnels[g] = r.hub.Dialer(g)
		}
	}
	if err := r.srv.ReloadBackends(c, tunnels); err != nil {
		return err
	}
	var ws []proxy.Warning
	for _, w := range c.Warnings() { // c has the backends alone: only theirs count
		if strings.HasPrefix(w.Key, "backend") {
			ws = append(ws, w)
		}
	}
	logWarnings(r.log, ws)
	return nil
}

// logWarnings logs the weakened settings a reload brought in, as serve
// does at start.
func logWarnings(log zerolog.Logger, ws []proxy.Warning) {
	for _, w := range ws {
		log.Warn().Str("key", w.Key).Msg("weakened setting: " + w.String())
	}
}
