package upstream

import (
	"sync"
	"time"
)

// HealthConfig is one backend's health check. Interval 0: no checks (the
// backend is taken as up at session start).
type HealthConfig struct {
	Interval time.Duration // between checks
	Timeout  time.Duration // one check, all of it (default: the smaller of Interval and 5s)
	Rise     int           // consecutive successes that turn a down backend up (default 2)
	Fall     int           // consecutive failures that turn an up backend down (default 3)
}

// Default rise and fall counts and the timeout cap.
const (
	DefaultRise    = 2
	DefaultFall    = 3
	DefaultTimeout = 5 * time.Second
)

// The shortest interval and timeout a configuration may set: each check
// opens a connection to the backend ("2ns" for "2s" would be a busy loop
// against it), and a check bounded by microseconds always fails.
const (
	MinInterval = 100 * time.Millisecond
	MinTimeout  = 10 * time.Millisecond
)

// Enabled reports whether the backend is checked.
func (c HealthConfig) Enabled() bool { return c.Interval > 0 }

// TimeoutOrDefault is the bound of one check.
func (c HealthConfig) TimeoutOrDefault() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return min(c.Interval, DefaultTimeout)
}

func (c HealthConfig) rise() int {
	if c.Rise > 0 {
		return c.Rise
	}
	return DefaultRise
}

func (c HealthConfig) fall() int {
	if c.Fall > 0 {
		return c.Fall
	}
	return DefaultFall
}

// Health is a backend's up/down state from its check results. A checked
// backend starts down and needs its first success to come up (a gateway
// that starts while a backend is dead never sends it a session): the first
// result decides, and counts as a change (up or down, it is logged); rise
// and fall count from then on. Safe for concurrent use.
type Health struct {
	cfg     HealthConfig
	mu      sync.Mutex
	up      bool
	checked bool // a result came in
	streak  int  // consecutive results against the current state
	lastErr error
	since   time.Time // when the state last changed (or the Health was made)
}

// State is a snapshot of a Health, for the admin API.
type State struct {
	Up      bool
	Known   bool      // a check result came in; false: starting, down until one does
	Since   time.Time // when the current state began (for !Known: when checking began)
	LastErr error     // the last check's error; nil after a success
}

// NewHealth returns the state of a backend checked as cfg says.
func NewHealth(cfg HealthConfig) *Health { return &Health{cfg: cfg, since: time.Now()} }

// State returns the current state, since when, and the last error.
func (h *Health) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return State{Up: h.up, Known: h.checked, Since: h.since, LastErr: h.lastErr}
}

// Up reports the current state.
func (h *Health) Up() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// LastErr is the last failed check's error (nil after a success).
func (h *Health) LastErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastErr
}

// Observe records one check's result (err nil: it passed) and reports the
// state after it and whether it changed.
func (h *Health) Observe(err error) (up, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ok := err == nil
	h.lastErr = err
	if !h.checked {
		h.checked = true
		h.up = ok
		h.streak = 0
		h.since = time.Now()
		return h.up, true // the first result is news either way: it is logged
	}
	if ok == h.up {
		h.streak = 0
		return h.up, false
	}
	h.streak++
	need := h.cfg.fall()
	if ok {
		need = h.cfg.rise()
	}
	if h.streak >= need {
		h.up, h.streak = ok, 0
		h.since = time.Now()
		return h.up, true
	}
	return h.up, false
}
