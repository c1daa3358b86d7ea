package admin

import (
	"context"
	"net/http"
	"time"
)

// BackendInfo is one backend as GET /v1/backends shows it.
type BackendInfo struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Via     string   `json:"via,omitempty"`   // the agent group that carries it; "": dialled directly
	Pools   []string `json:"pools,omitempty"` // the pools it is a member of
	// State is "up" or "down" (its health checks, after their rise and
	// fall counts), or "unknown": not checked (health.interval 0: sessions
	// still go to it), or no result yet.
	State     string      `json:"state"`
	Checked   bool        `json:"checked"`              // it has a health check
	Since     time.Time   `json:"since"`                // when State began (unchecked: when it was configured)
	LastError string      `json:"last_error,omitempty"` // the last failed check's error; empty after a success
	Sessions  int64       `json:"sessions"`             // sessions holding a connection to it now
	Agents    []AgentInfo `json:"agents,omitempty"`     // for a via backend: the group's connected agents
}

// AgentInfo is one connected reverse-connect agent of a backend's group.
type AgentInfo struct {
	Name      string    `json:"name"`
	Address   string    `json:"address"`   // its address as the gateway sees it
	Pin       string    `json:"pin"`       // the first 12 characters of its certificate's pin (base64 SHA-256 of the SPKI)
	Connected time.Time `json:"connected"` // when it joined
	Streams   int       `json:"streams"`   // streams open through it
	// State: "up" (takes new sessions), "draining" (shutting down: only its
	// own sessions' data connections) or "silent" (set aside after leaving
	// a stream request unanswered: no new session until it is heard from).
	State string `json:"state"`
}

// Backends lists the backends; the gateway implements it. It is called
// from HTTP handlers, concurrently with the sessions and with reloads.
type Backends interface {
	Backends() []BackendInfo
}

// WithBackends serves the backends at GET /v1/backends.
func WithBackends(b Backends) Option { return func(s *Server) { s.backends = b } }

type backendsBody struct {
	Backends []BackendInfo `json:"backends"`
}

func (s *Server) handleBackends(w http.ResponseWriter, _ *http.Request) {
	if s.backends == nil {
		writeError(w, http.StatusNotFound, "backends are not available")
		return
	}
	list := s.backends.Backends()
	if list == nil {
		list = []BackendInfo{}
	}
	writeJSON(w, http.StatusOK, backendsBody{Backends: list})
}

// ListBackends returns the backends, their health and their agents.
func (c *Client) ListBackends(ctx context.Context) ([]BackendInfo, error) {
	var body backendsBody
	err := c.do(ctx, http.MethodGet, "/v1/backends", nil, http.StatusOK, &body)
	return body.Backends, err
}
