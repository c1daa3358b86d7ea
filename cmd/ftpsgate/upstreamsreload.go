package main

import (
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
//     pin cuts its agent at once). The listener's settings (listen,
//     cert_file, key_file, max_streams, keepalive, wait_for_agent,
//     handshake_timeout) only change at a restart: when the file changes
//     them, the groups and pins are still applied (a revocation must not
//     wait for a restart) and the error names each key left as it was.
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
	path  string
	hub   *tunnel.Hub
	start *agentsSetup // the section the listener was started with
	log   zerolog.Logger
}

// Reload applies the file's groups and pins to the running listener.
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
	var restart []string
	was, now := r.start, s
	for _, k := range []struct {
		key  string
		same bool
	}{
		{"agents.listen", was.listen == now.listen},
		{"agents.cert_file", was.certFile == now.certFile},
		{"agents.key_file", was.keyFile == now.keyFile},
		{"agents.max_streams", was.hub.MaxStreams == now.hub.MaxStreams},
		{"agents.wait_for_agent", was.hub.WaitForAgent == now.hub.WaitForAgent},
		{"agents.keepalive", was.hub.KeepAlive == now.hub.KeepAlive},
		{"agents.handshake_timeout", was.hub.HandshakeTimeout == now.hub.HandshakeTimeout},
	} {
		if !k.same {
			restart = append(restart, k.key)
		}
	}
	if len(restart) > 0 {
		msg := fmt.Sprintf("%s changed: the agent listener keeps its settings until a restart (the groups and pins were applied)", strings.Join(restart, ", "))
		if was.listen != now.listen {
			msg = fmt.Sprintf("agents.listen changed from %s to %s, which needs a restart; ", was.listen, now.listen) + msg
		}
		return errors.New(msg)
	}
	return nil
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
