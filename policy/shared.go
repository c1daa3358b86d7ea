package policy

import (
	"errors"
	"net/netip"
	"time"
)

// The seams a fleet's shared store (package fleet) plugs into: a ticket
// also counted in the shared store, and bans installed into a Defender
// that serves as the local cache of the shared ban list.

// TicketHook is told of a ticket's logins and of its release, for a store
// that counts sessions beyond this process. Login is called once the login
// has been counted here; an error undoes that count and is Ticket.Login's.
// Release is called once.
type TicketHook interface {
	Login(user string) error
	Release()
}

// Attach makes h part of the ticket: Login and Release call it. Call it
// before the ticket is used.
func (t *Ticket) Attach(h TicketHook) {
	t.mu.Lock()
	t.hook = h
	t.mu.Unlock()
}

// Put installs b as it is (a ban decided elsewhere: the shared store),
// replacing the ban of its address, and fires a ban event unless the same
// ban (same end and reason) was already there. A ban that has ended, an
// invalid or an allowlisted address is ignored; it reports whether b was
// installed.
func (d *Defender) Put(b Ban) bool {
	if d == nil {
		return false
	}
	b.IP = normalize(b.IP)
	now := d.time()
	if !b.IP.IsValid() || d.allowed(b.IP) || !now.Before(b.Until) {
		return false
	}
	d.mu.Lock()
	if old := d.bans[b.IP]; old != nil && old.Until.Equal(b.Until) && old.Reason == b.Reason {
		d.mu.Unlock()
		return true
	}
	nb := b
	d.bans[b.IP] = &nb
	delete(d.failures, b.IP)
	delete(d.past, b.IP)
	d.nbans.Store(int64(len(d.bans)))
	d.gen++
	d.mu.Unlock()
	d.emit(BanEvent{Kind: EventBan, IP: b.IP, Until: b.Until, Duration: b.Until.Sub(now).Round(time.Second), Reason: b.Reason, Offences: b.Offences})
	d.persist.request()
	return true
}

// Config returns the configuration the Defender was built with.
func (d *Defender) Config() BanConfig {
	if d == nil {
		return BanConfig{}
	}
	return d.cfg
}

// ErrStoreDown refuses a session (421) or a login because the fleet's
// shared store cannot be reached and fleet.on_store_error is closed.
var ErrStoreDown = errors.New("policy: the fleet's shared store is unavailable")

// Weight is what one event of kind adds to an address's count (0: not
// counted), as the Defender weighs it.
func (c BanConfig) Weight(kind string) int { return c.weight(kind) }

// Effective returns c with its defaults filled in (max_failures, window,
// duration, max_duration).
func (c BanConfig) Effective() BanConfig {
	c.MaxFailures, c.Window, c.Duration, c.MaxDuration = c.maxFailures(), c.window(), c.duration(), c.maxDuration()
	return c
}

// Allowed reports whether ip is in one of the networks of c.Allow (never
// banned).
func (c BanConfig) Allowed(ip netip.Addr) bool { return allowed(c.Allow, normalize(ip)) }

// Normalize makes one key per client address, as the Defender and the
// Admission key theirs: IPv4-mapped IPv6 addresses become IPv4, zones are
// dropped.
func Normalize(ip netip.Addr) netip.Addr { return normalize(ip) }

// Effective returns p with its defaults filled in.
func (p LockoutPolicy) Effective() LockoutPolicy {
	p.Threshold, p.Delay, p.MaxDelay, p.LockAfter = p.threshold(), p.delay(), p.maxDelay(), p.lockAfter()
	p.LockFor, p.Window = p.lockFor(), p.window()
	return p
}
