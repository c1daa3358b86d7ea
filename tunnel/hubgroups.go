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
	next := make(map[string][][32]byte, len(groups))
	for name, pins := range groups {
		next[name] = slices.Clone(pins)
	}
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
	h.cfg.Groups = next
	h.mu.Unlock()
	for _, a := range cut {
		h.log.Warn().Str("agent_group", a.group).Str("agent", a.name).Str("agent_addr", a.remote).
			Str("pin", ShortPin(a.pin)).Msg("agent cut: its pin or group was removed by a reload")
		_ = a.sess.Close()
	}
	return len(cut)
}

// AgentInfo is one connected agent, for the admin API.
type AgentInfo struct {
	Name    string
	Remote  string    // its address as the Hub sees it
	Pin     string    // ShortPin of its certificate
	Since   time.Time // when it joined
	Streams int       // streams open through it
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
		out = append(out, AgentInfo{Name: a.name, Remote: a.remote, Pin: ShortPin(a.pin), Since: a.since, Streams: int(a.open.Load())})
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
