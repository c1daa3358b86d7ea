package tunnel

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Tunnel states in the agent's health report.
const (
	StateUp   = "up"
	StateDown = "down"
)

// GatewayState is one configured gateway as the agent's health report shows
// it: its tunnel's state and since when (zero: never up).
type GatewayState struct {
	Address string    `json:"address"`
	State   string    `json:"state"`
	Since   time.Time `json:"since,omitzero"`
}

// Health is the agent's health report (GET /healthz): status "up" while a
// tunnel is up, "down" while none is, "draining" once shutdown began.
type Health struct {
	Status   string         `json:"status"`
	Gateways []GatewayState `json:"gateways"`
}

// gatewayStates tracks the state of each configured gateway.
type gatewayStates struct {
	mu       sync.Mutex
	list     []GatewayState // configuration order, one per address
	draining bool
}

func newGatewayStates(gateways []string) *gatewayStates {
	s := &gatewayStates{}
	seen := map[string]bool{}
	for _, g := range gateways {
		if !seen[g] {
			seen[g] = true
			s.list = append(s.list, GatewayState{Address: g, State: StateDown})
		}
	}
	return s
}

func (s *gatewayStates) set(gw, state string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.list {
		if s.list[i].Address == gw {
			s.list[i].State, s.list[i].Since = state, at
		}
	}
}

func (s *gatewayStates) drain() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
}

func (s *gatewayStates) health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Health{Status: StateDown, Gateways: append([]GatewayState(nil), s.list...)}
	for _, g := range s.list {
		if g.State == StateUp {
			h.Status = StateUp
		}
	}
	if s.draining {
		h.Status = "draining"
	}
	return h
}

// Health reports the agent's tunnels.
func (a *Agent) Health() Health { return a.states.health() }

// HealthHandler serves GET /healthz: 200 while a tunnel to a gateway is up,
// 503 otherwise (and while the agent drains at shutdown), with the Health
// report as JSON.
func (a *Agent) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := a.Health()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if h.Status != StateUp {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
}
