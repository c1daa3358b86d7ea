package vfs

import "sync/atomic"

// Holder holds the live access section: sessions ask it at login (For),
// SIGHUP swaps in a checked new one (Reload). A session keeps the Policy
// it got at login; the new rules apply from the next login. The zero
// value, and a nil *Holder, hold no section: For returns nil (unconfined).
type Holder struct {
	p atomic.Pointer[Access]
}

// NewHolder holds a (nil: none).
func NewHolder(a *Access) *Holder {
	h := &Holder{}
	h.p.Store(a)
	return h
}

// For is Access.For on the section held now.
func (h *Holder) For(user string, groups []string) (*Policy, error) {
	if h == nil {
		return nil, nil
	}
	return h.p.Load().For(user, groups)
}

// Reload swaps in a, which the caller has validated (Access.Validate and
// the configuration's own checks); nil removes every profile.
func (h *Holder) Reload(a *Access) { h.p.Store(a) }

// Load is the section held now (nil: none).
func (h *Holder) Load() *Access {
	if h == nil {
		return nil
	}
	return h.p.Load()
}
