package tunnel

import (
	"encoding/base64"
	"maps"
	"slices"
	"time"
)

// SetGroups replaces the agent groups and their pins (a configuration
// reload). A connected agent whose pin is no longer in its group (or whose
// group is gone) is cut at once: it leaves the group before any new
// stream can pick it, then its tunnel is closed, with the streams still
// open on it (a revoked agent carries nothing more). It is refused when
// it reconnects. A pin added is accepted at its agent's next connection.
// groups must pass HubConfig.Validate's checks; it returns the agents cut.
func (h *Hub) SetGroups(groups map[string][][32]byte) int {
	h.mu.Lock()
	next := clonePins(groups)
	var cut []*agent
	for name, g := range h.groups {
		pins, kept := next[name]
		keep := g.agents[:0]
		for _, a := range g.agents {
			if kept && pinned(pins, a.pin) {
				keep = append(keep, a)
			} else {
				cut = append(cut, a)
			}
		}
		g.agents = keep
		if !kept {
			delete(h.groups, name)
			close(g.changed) // dials waiting on it look again, and fail
			h.metrics.forget(name)
			continue
		}
	}
	for name := range next {
		if h.groups[name] == nil {
			h.groups[name] = &group{changed: make(chan struct{})}
		}
	}
	h.pins = next
	h.mu.Unlock()
	for _, a := range cut {
		h.log.Warn().Str("agent_group", a.group).Str("agent", a.name).Str("agent_addr", a.remote).
			Str("pin", ShortPin(a.pin)).Msg("agent cut: its pin or group was removed by a reload")
		_ = a.sess.Close()
	}
	return len(cut)
}

// SetConfig replaces the listener's settings (a reload); cfg.Groups is
// not read (SetGroups replaces the groups), and a nil GetCertificate keeps
// the certificate in force. What changes applies to what starts after:
// GetCertificate and HandshakeTimeout to the agents' handshakes that
// follow (the tunnels up keep theirs), MaxStreams and WaitForAgent to the
// dials that follow, on every agent (lowered, it opens no stream on an
// agent that already holds that many: those open go on), HandshakeTimeout
// also to their request's wait; KeepAlive only to the tunnels that connect
// after (a yamux session keeps its own). cfg's settings must pass
// Validate's checks.
func (h *Hub) SetConfig(cfg HubConfig) {
	cfg.Groups = nil
	if cfg.GetCertificate == nil {
		cfg.GetCertificate = h.conf().GetCertificate
	}
	h.cfg.Store(&cfg)
}

// conf is the settings in force (Groups unset: h.pins).
func (h *Hub) conf() *HubConfig { return h.cfg.Load() }

// clonePins is a deep copy of groups' pins.
func clonePins(groups map[string][][32]byte) map[string][][32]byte {
	out := make(map[string][][32]byte, len(groups))
	for name, pins := range groups {
		out[name] = slices.Clone(pins)
	}
	return out
}

// AgentInfo is one connected agent, for the admin API.
type AgentInfo struct {
	Name    string
	Remote  string    // its address as the Hub sees it
	Pin     string    // ShortPin of its certificate
	Since   time.Time // when it joined
	Streams int       // streams open through it
	// State is AgentUp (it takes new sessions), AgentDraining (shutting
	// down: only its own sessions' data connections) or AgentSilent (set
	// aside: it left a stream request unanswered in silence and has not been
	// heard from since).
	State string
}

// AgentInfo's states.
const (
	AgentUp       = "up"
	AgentDraining = "draining"
	AgentSilent   = "silent"
)

// state is a's AgentInfo state.
func (a *agent) state() string {
	switch {
	case a.goneAway.Load():
		return AgentDraining
	case a.setAside():
		return AgentSilent
	}
	return AgentUp
}

// AgentsOf lists the live agents of group, oldest first.
func (h *Hub) AgentsOf(group string) []AgentInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups[group]
	if g == nil {
		return nil
	}
	out := make([]AgentInfo, 0, len(g.agents))
	for _, a := range g.agents {
		out = append(out, AgentInfo{Name: a.name, Remote: a.remote, Pin: ShortPin(a.pin), Since: a.since, Streams: int(a.open.Load()), State: a.state()})
	}
	slices.SortFunc(out, func(x, y AgentInfo) int { return x.Since.Compare(y.Since) })
	return out
}

// Groups lists the agent groups, sorted.
func (h *Hub) Groups() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.groups))
}

// ShortPin is the first 12 characters of a pin's base64 ("sha256/" and
// the rest left off): enough to tell a group's agents apart in a listing.
func ShortPin(pin [32]byte) string {
	return base64.StdEncoding.EncodeToString(pin[:])[:12]
}
