package policy

import (
	"container/list"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of LockoutPolicy.
const (
	DefaultLockoutThreshold = 5
	DefaultLockoutDelay     = time.Second
	DefaultLockoutMaxDelay  = 30 * time.Second
	DefaultLockAfter        = 10
	DefaultLockFor          = 15 * time.Minute
	DefaultLockoutWindow    = 15 * time.Minute
	DefaultLockoutMaxUsers  = 100_000

	maxLockAfter       = 1000
	maxLockoutUsers    = 10_000_000
	maxLockoutDuration = 24 * time.Hour
	maxLockoutDelay    = 5 * time.Minute
	lockoutSweep       = 4 // idle entries looked at per call
)

// LockoutPolicy configures per-user login throttling and temporary lockout
// (the auth.lockout section). Every failed login for a user name counts,
// whoever sent it and whether or not the user exists. The zero value
// delays from the 5th failure (1s, doubling to 30s), locks for 15 minutes
// at the 10th, forgets failures 15 minutes after the latest, and tracks at
// most 100000 user names.
type LockoutPolicy struct {
	// Threshold is the number of failures after which each further attempt
	// is delayed. Zero: 5.
	Threshold int
	// Delay is the first delay; each further failure doubles it. Zero: 1s.
	Delay time.Duration
	// MaxDelay caps the delay, at most 5m. Zero: 30s.
	MaxDelay time.Duration
	// LockAfter is the number of failures that locks the user, at least
	// Threshold, at most 1000. Zero: 10.
	LockAfter int
	// LockFor is how long a lock lasts, at most 24h. Zero: 15m.
	LockFor time.Duration
	// Window: failures are forgotten Window after the latest one, at most
	// 24h. Zero: 15m.
	Window time.Duration
	// MaxUsers bounds the user names tracked; beyond it the least recently
	// active one is forgotten. Zero: 100000.
	MaxUsers int
}

func (p LockoutPolicy) threshold() int          { return cmp0(p.Threshold, DefaultLockoutThreshold) }
func (p LockoutPolicy) delay() time.Duration    { return cmp0(p.Delay, DefaultLockoutDelay) }
func (p LockoutPolicy) maxDelay() time.Duration { return cmp0(p.MaxDelay, DefaultLockoutMaxDelay) }
func (p LockoutPolicy) lockAfter() int          { return cmp0(p.LockAfter, DefaultLockAfter) }
func (p LockoutPolicy) lockFor() time.Duration  { return cmp0(p.LockFor, DefaultLockFor) }
func (p LockoutPolicy) window() time.Duration   { return cmp0(p.Window, DefaultLockoutWindow) }
func (p LockoutPolicy) maxUsers() int           { return cmp0(p.MaxUsers, DefaultLockoutMaxUsers) }

// Validate checks the policy. Each problem is a *confkey.Error whose key is
// relative to the auth.lockout section ("lock_after"), several joined with
// errors.Join.
func (p LockoutPolicy) Validate() error {
	var errs []error
	if p.Threshold < 0 || p.Threshold > maxLockAfter {
		errs = append(errs, confkey.Errorf("threshold", "must be between 1 and %d", maxLockAfter))
	}
	if p.LockAfter < 0 || p.LockAfter > maxLockAfter {
		errs = append(errs, confkey.Errorf("lock_after", "must be between 1 and %d", maxLockAfter))
	} else if p.lockAfter() < p.threshold() {
		errs = append(errs, confkey.Errorf("lock_after", "%d is less than threshold %d", p.lockAfter(), p.threshold()))
	}
	if p.MaxUsers < 0 || p.MaxUsers > maxLockoutUsers {
		errs = append(errs, confkey.Errorf("max_users", "must be between 1 and %d", maxLockoutUsers))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
		max time.Duration
	}{
		{"delay", p.Delay, maxLockoutDelay},
		{"max_delay", p.MaxDelay, maxLockoutDelay},
		{"lock_for", p.LockFor, maxLockoutDuration},
		{"window", p.Window, maxLockoutDuration},
	} {
		if d.v < 0 || d.v > d.max {
			errs = append(errs, confkey.Errorf(d.key, "must be between 0 (the default) and %s", d.max))
		}
	}
	if p.MaxDelay >= 0 && p.maxDelay() < p.delay() {
		errs = append(errs, confkey.Errorf("max_delay", "%s is shorter than delay %s", p.maxDelay(), p.delay()))
	}
	return errors.Join(errs...)
}

// step is the delay of an attempt after n failures (n >= threshold).
func (p LockoutPolicy) step(n int) time.Duration {
	d, maxD := p.delay(), p.maxDelay()
	for i := p.threshold(); i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// MinRelock is the shortest time in which LockAfter failures can lock a
// user whose failures were forgotten (or whose lock just ended): the
// delays of the attempts after Threshold failures, one after another.
func (p LockoutPolicy) MinRelock() time.Duration {
	var sum time.Duration
	for n := p.threshold(); n < p.lockAfter(); n++ {
		sum += p.step(n)
	}
	return sum
}

// Lockout slows and then temporarily locks logins per user name. It is
// plain decision code: the session asks Check before it checks a login's
// credentials and obeys the LockoutDecision: it waits the delay (answering
// nothing), checks the credentials and reports the outcome with Fail or
// Succeed; or it refuses the attempt unchecked. It is safe for
// concurrent use and starts no goroutines. The methods of a nil *Lockout
// are valid: nothing is ever delayed or locked.
//
// User names are tracked the same way whether or not the user exists, so
// the delays and locks do not reveal which names are accounts: the gateway
// must give unknown users, wrong passwords and refused attempts the same
// reply. Names are compared case-insensitively (LDAP and AD names are), and
// kept only as a keyed 64-bit hash.
//
// Check counts each attempt as a failure up front (Succeed forgives it), so
// attempts sent in parallel are counted as they arrive, not when they are
// answered; an attempt abandoned during its delay stays counted. The
// guarantee against an attacker who tries a user's name from any number of
// addresses in parallel:
//
//   - The attempt that follows n >= Threshold counted attempts is answered
//     no sooner than step(n) after the previous delayed attempt of the user
//     (step: Delay doubling with each attempt, up to MaxDelay); one that
//     would wait longer than MaxDelay is refused without a check.
//   - The LockAfter-th attempt, if it fails (or is abandoned), locks the
//     user for LockFor from when it was answered. Attempts during a lock
//     are refused without a check and not counted: nothing extends a lock.
//     When it ends the user starts afresh.
//   - So a lock begins no sooner than MinRelock (31s with the defaults)
//     after the user's fresh start, and an attacker can keep an account
//     locked at most LockFor out of every LockFor+MinRelock. In between,
//     an attacker who keeps sending can still take the user's attempts
//     (delayed or refused as busy): per-user throttling cannot keep a
//     determined distributed attacker from denying one user's logins; it
//     only bounds the guessing to LockAfter attempts per LockFor+MinRelock.
//     The owner logs in again once the attacker has stopped for LockFor.
//     Each failure also counts against its address (bans).
//
// A lock refuses every login of the user, a valid client certificate
// included (kept simple; the gateway may choose to ask Check only for
// password-like first factors).
//
// Memory is bounded by MaxUsers entries; beyond it the least recently
// active name is forgotten (its failures and lock with it). Forgetting a
// locked name so takes MaxUsers fresh names with failures, each of which
// counts against its address.
type Lockout struct {
	p    LockoutPolicy
	seed maphash.Seed

	mu    sync.Mutex
	users map[uint64]*list.Element // of *lockEntry
	lru   list.List                // most recently active first
}

type lockEntry struct {
	key   uint64
	fails int       // attempts counted within the window (not while locked)
	last  time.Time // the latest counted attempt
	until time.Time // the lock's end; zero: not locked
	next  time.Time // when the latest delayed attempt is answered
	// lockAt is when the LockAfter-th attempt is answered.
	lockAt time.Time
}

// NewLockout returns a Lockout for p, which must have passed Validate.
func NewLockout(p LockoutPolicy) *Lockout {
	return &Lockout{p: p, seed: maphash.MakeSeed(), users: map[uint64]*list.Element{}}
}

func (l *Lockout) key(user string) uint64 {
	return maphash.String(l.seed, strings.ToLower(user))
}

// refresh ends what has expired at now: a lock, the failures after the
// window. It reports whether e is idle (nothing left to remember).
func (l *Lockout) refresh(e *lockEntry, now time.Time) bool {
	if !e.until.IsZero() && !now.Before(e.until) {
		*e = lockEntry{key: e.key}
	}
	if e.until.IsZero() && e.fails > 0 && now.Sub(e.last) >= l.p.window() {
		e.fails = 0
	}
	return e.until.IsZero() && e.fails == 0 && !e.next.After(now)
}

// sweep forgets a few idle entries from the least recently active end.
func (l *Lockout) sweep(now time.Time) {
	for range lockoutSweep {
		back := l.lru.Back()
		if back == nil || !l.refresh(back.Value.(*lockEntry), now) {
			return
		}
		l.remove(back)
	}
}

func (l *Lockout) remove(el *list.Element) {
	delete(l.users, el.Value.(*lockEntry).key)
	l.lru.Remove(el)
}

// entry returns the entry of key, created if need be (forgetting the least
// recently active one beyond MaxUsers), refreshed and made most recent.
func (l *Lockout) entry(k uint64, now time.Time) *lockEntry {
	el, ok := l.users[k]
	if !ok {
		for len(l.users) >= l.p.maxUsers() {
			l.remove(l.lru.Back())
		}
		el = l.lru.PushFront(&lockEntry{key: k})
		l.users[k] = el
	}
	l.lru.MoveToFront(el)
	e := el.Value.(*lockEntry)
	l.refresh(e, now)
	return e
}

// LockoutDecision is Check's answer for one login attempt.
type LockoutDecision struct {
	// Delay is how long to wait before answering (zero: at once).
	Delay time.Duration
	// Refuse: answer as for a wrong password, at once, without checking the
	// credentials, and call neither Fail nor Succeed. LockedUntil says why.
	Refuse bool
	// LockedUntil is when the user's lock ends; zero with Refuse: the
	// attempt would wait longer than MaxDelay behind others for the user.
	LockedUntil time.Time
	// NewLock: this Check set the lock (the LockAfter-th attempt was
	// abandoned or is still being checked), for a log line.
	NewLock bool
}

// Check is asked before a login of user is checked, and counts the attempt
// (as a failure until Succeed says otherwise).
func (l *Lockout) Check(user string, now time.Time) LockoutDecision {
	if l == nil {
		return LockoutDecision{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	e := l.entry(l.key(user), now)
	var dec LockoutDecision
	if e.until.IsZero() && e.fails >= l.p.lockAfter() {
		// The LockAfter-th attempt is still being checked, or was
		// abandoned: it counts as the failure that locks, from when it
		// was (or will be) answered.
		*e = lockEntry{key: e.key, until: e.lockAt.Add(l.p.lockFor())}
		l.refresh(e, now)
		dec.NewLock = !e.until.IsZero()
	}
	if !e.until.IsZero() {
		dec.Refuse, dec.LockedUntil = true, e.until
		return dec
	}
	at := now
	if n := e.fails; n >= l.p.threshold() {
		if e.next.After(now) {
			at = e.next
		}
		at = at.Add(l.p.step(n))
		if at.Sub(now) > l.p.maxDelay() {
			return LockoutDecision{Refuse: true}
		}
		e.next = at
	}
	e.fails++
	e.last = now
	if e.fails == l.p.lockAfter() {
		e.lockAt = at
	}
	return LockoutDecision{Delay: at.Sub(now)}
}

// Fail records that the attempt of user that Check let through failed (a
// wrong password, an unknown user, a wrong second factor). It reports
// whether this failure locked the user. A failure while the user is locked
// is not counted; one without a Check before it is counted here.
func (l *Lockout) Fail(user string, now time.Time) (locked bool) {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	e := l.entry(l.key(user), now)
	if !e.until.IsZero() {
		return false
	}
	if e.fails == 0 { // no Check, or forgotten since
		e.fails, e.last = 1, now
	}
	if e.fails >= l.p.lockAfter() && e.lockAt.After(now) {
		now = e.lockAt
	}
	if e.fails < l.p.lockAfter() {
		return false
	}
	*e = lockEntry{key: e.key, until: now.Add(l.p.lockFor())}
	return true
}

// Succeed records that the attempt of user that Check let through
// succeeded: the user's failures are forgotten. A lock is not lifted
// (Unlock does that).
func (l *Lockout) Succeed(user string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.users[l.key(user)]; ok && el.Value.(*lockEntry).until.IsZero() {
		l.remove(el)
	}
}

// Cancel takes back the attempt of user that Check let through and that
// could not be decided (the directory did not answer): it was neither a
// failure nor a success, so it must not count towards the delay or the
// lock. A user locked meanwhile stays locked.
func (l *Lockout) Cancel(user string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.users[l.key(user)]
	if !ok {
		return
	}
	e := el.Value.(*lockEntry)
	if !e.until.IsZero() || e.fails == 0 {
		return
	}
	if e.fails == l.p.lockAfter() {
		e.lockAt = time.Time{}
	}
	e.fails--
}

// Unlock forgets user's failures and lifts its lock (for the admin API).
func (l *Lockout) Unlock(user string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.users[l.key(user)]; ok {
		l.remove(el)
	}
}

// Len is the number of user names tracked (for metrics and tests).
func (l *Lockout) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}
