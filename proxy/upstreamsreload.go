package proxy

import (
	"errors"
	"reflect"
	"slices"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

// Reloading the backends (SIGHUP): ReloadBackends builds a new set of
// backends and routing and swaps it in whole. New sessions route with the
// new set; a running session keeps the backend it holds until it ends
// (it never moves). A backend whose settings are unchanged is kept as it
// is: its health state, its checker, its session count (no flap back to
// "starting" on reload); only its TLS files are read again. A new or
// changed backend gets a fresh checker, whose first result the reload
// waits for (at most its timeout) before the swap, as Start does. A
// removed or changed backend's checker stops after the swap; its sessions
// finish on it.

// ErrReloadClosing: the server is shutting down; nothing was reloaded.
var ErrReloadClosing = errors.New("proxy: shutting down")

// ReloadBackends swaps in next's Backend, Backends, Pools and Routing (the
// rest of next is ignored: it cannot change without a restart). tunnels,
// when not nil, are the tunnels Backend.Via may name from now on; a name
// already known keeps its dialer. An invalid set changes nothing and the
// error names the keys.
func (s *Server) ReloadBackends(next Config, tunnels map[string]Dialer) error {
	cfg := s.cfg
	cfg.Backend, cfg.Backends, cfg.Pools, cfg.Routing = next.Backend, next.Backends, next.Pools, next.Routing
	if err := errors.Join(cfg.validateBackends()...); err != nil {
		return err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	tuns := s.tunnels
	if tunnels != nil {
		tuns = map[string]Dialer{}
		for name, d := range tunnels {
			if old, ok := s.tunnels[name]; ok {
				d = old
			}
			tuns[name] = d
		}
	}
	old := s.ups.Load()
	keep := func(b Backend) *upBackend {
		if ob := old.byName[b.Name]; ob != nil && reflect.DeepEqual(ob.cfg, b) && (b.Via == "" || tuns[b.Via] == ob.dialer) {
			return ob
		}
		return nil
	}
	ups, err := newUpstreams(cfg, s.dialer, tuns, keep)
	if err != nil {
		return err
	}
	for t := range ups.pickers {
		if p := old.pickers[t]; p != nil {
			ups.pickers[t] = p // the turn goes on: not each reload's next session on the first member
		}
	}
	var fresh []*upBackend
	for _, b := range ups.list {
		if old.byName[b.cfg.Name] != b {
			fresh = append(fresh, b)
		}
	}
	if s.started {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return ErrReloadClosing
		}
		for _, b := range fresh {
			b.data = s.backendDataPorts(b.cfg)
		}
		s.startHealthChecks(fresh) // and their first results
	}
	for b, tc := range ups.freshTLS {
		b.tls.Store(tc)
	}
	s.tunnels = tuns
	s.ups.Store(ups)
	for _, ob := range old.list {
		nb := ups.byName[ob.cfg.Name]
		if nb == ob {
			continue
		}
		stopHealthCheck(ob)
		change := events.BackendChanged
		if nb == nil {
			change = events.BackendRemoved
		}
		s.env.emit(events.BackendConfig{Backend: ob.cfg.Name, Address: ob.cfg.Address, Change: change, Checked: nb != nil && nb.health != nil})
	}
	for _, nb := range fresh {
		if old.byName[nb.cfg.Name] == nil {
			s.env.emit(events.BackendConfig{Backend: nb.cfg.Name, Address: nb.cfg.Address, Change: events.BackendAdded, Checked: nb.health != nil})
		}
	}
	return nil
}

// BackendInfo is one backend as the admin API shows it.
type BackendInfo struct {
	Name, Address, Via string
	Pools              []string  // the pools it is a member of
	State              string    // "up", "down", or "unknown" (not checked, or no result yet)
	Checked            bool      // it has a health check
	Since              time.Time // when State began (unchecked: when it was configured)
	LastError          string    // the last failed check's error; "" after a success
	Sessions           int64     // sessions holding (or dialling) a connection to it now
}

// Backends lists the current backends, in configuration order. Backends a
// reload removed are not listed, though their last sessions may still run.
func (s *Server) Backends() []BackendInfo {
	ups := s.ups.Load()
	out := make([]BackendInfo, 0, len(ups.list))
	for _, b := range ups.list {
		bi := BackendInfo{Name: b.cfg.Name, Address: b.cfg.Address, Via: b.cfg.Via, State: "unknown",
			Since: b.created, Sessions: b.sessions.Load(), Checked: b.health != nil}
		for _, p := range ups.routing.Pools {
			if slices.Contains(p.Members, b.cfg.Name) {
				bi.Pools = append(bi.Pools, p.Name)
			}
		}
		if b.health != nil {
			st := b.health.State()
			bi.Since = st.Since
			switch {
			case !st.Known:
			case st.Up:
				bi.State = "up"
			default:
				bi.State = "down"
			}
			if st.LastErr != nil {
				bi.LastError = st.LastErr.Error()
			}
		}
		out = append(out, bi)
	}
	return out
}
