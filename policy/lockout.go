package policy

import (
	"container/list"
	"context"
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// Lockout slows and then temporarily locks logins per user name. The
// session asks Begin before it checks a login's credentials: Begin waits
// for the attempt's turn (and, after failures, its delay) and returns a
// LockoutAttempt, or refuses it (ErrLockedOut: answer as for a wrong
// password, without checking). After the check the session reports the
// outcome with Done: a failure (wrong password, unknown user, wrong second
// factor) counts; a success forgets the user's failures; an attempt that
// was not decided (the 332 step, a directory that cannot be reached, a
// client gone) counts nothing. It is safe for concurrent use and starts no
// goroutines. The methods of a nil *Lockout are valid: nothing is ever
// delayed, limited or locked.
//
// User names are tracked the same way whether or not the user exists, so
// the delays and locks do not reveal which names are accounts: the gateway
// must give unknown users, wrong passwords and refused attempts the same
// reply. Names are compared case-insensitively (LDAP and AD names are), and
// kept only as a keyed 64-bit hash.
//
// Only failures count, when they are reported. What keeps parallel
// attempts from slipping past the count is a per-user limit on the
// attempts being checked at once: max(1, Threshold - failures). Further
// attempts wait for a turn (as long as their context allows); they are not
// refused. So a user's parallel logins (clients that open several sessions
// at once) all get through while there are no failures, and an attacker
// gets at most Threshold unslowed guesses at a name, in parallel or not.
// The guarantee against an attacker who tries a name from any number of
// addresses in parallel:
//
//   - From Threshold failures on, attempts are checked one at a time, each
//     no sooner than step(n) after its turn came and after the previous
//     delayed attempt of the user started (n failures; step: Delay doubling
//     with each failure, up to MaxDelay). One that would wait longer than
//     MaxDelay, counting the delays of those waiting before it, is
//     refused without a check.
//   - The LockAfter-th failure locks the user for LockFor from when it was
//     reported. Attempts during a lock are refused without a check and
//     their failures are not counted: nothing extends a lock. When it ends
//     the user starts afresh.
//   - So a lock begins no sooner than MinRelock (31s with the defaults)
//     after the user's fresh start, and an attacker can keep an account
//     locked at most LockFor out of every LockFor+MinRelock. In between,
//     an attacker who keeps sending can still take the user's turns
//     (delayed or refused as busy): per-user throttling cannot keep a
//     determined distributed attacker from denying one user's logins; it
//     only bounds the guessing to LockAfter attempts per LockFor+MinRelock.
//     The owner logs in again once the attacker has stopped for LockFor.
//     Each failure also counts against its address (bans).
//
// A lock refuses every login of the user, a valid client certificate
// included (kept simple; the gateway may choose to ask Begin only for
// password-like first factors).
//
// Memory is bounded by MaxUsers entries; beyond it the least recently
// active name is forgotten (its failures and lock with it; its waiting
// attempts start again on a fresh entry). Forgetting a locked name so takes
// MaxUsers fresh names with failures, each of which counts against its
// address.
type Lockout struct {
	p    LockoutPolicy
	seed maphash.Seed
	// now and sleep are the clock (tests replace them): sleep waits d or
	// until ctx is done.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	// trace, when set (by tests only), is told of each change of a user's
	// state, in order, under mu: it sees the periods from a fresh start to
	// a lock as the Lockout does, whoever moves the clock meanwhile.
	trace func(lockEvent)

	mu    sync.Mutex
	users map[uint64]*list.Element // of *lockEntry
	lru   list.List                // most recently active first
}

type lockEntry struct {
	key   uint64
	fails int       // failures within the window (not while locked)
	last  time.Time // the latest counted failure
	until time.Time // the lock's end; zero: not locked
	next  time.Time // when the latest delayed attempt's check may start
	// active counts the attempts holding a turn (waiting out their delay
	// or being checked), waiting those waiting for one; wake is closed
	// when a turn frees or the entry changes (nil: nobody waits).
	active, waiting int
	wake            chan struct{}
}

// lockEventKind is what happened to a user's entry (for the trace).
type lockEventKind int

const (
	lockGranted lockEventKind = iota + 1 // Begin let an attempt through (Delay: its delay)
	lockRefused                          // Begin refused: locked (Until: the lock's end)
	lockBusy                             // Begin refused: would wait longer than MaxDelay
	lockFailed                           // Done counted a failure (Fails: the count after it)
	lockLocked                           // Done's failure locked the user until Until
	lockFresh                            // the failures were forgotten: the lock (Until, if not zero) ended, the window passed, a success
	lockLifted                           // Unlock forgot the failures and lifted the lock (Until, if not zero)
)

// lockEvent is what the trace of a Lockout is told.
type lockEvent struct {
	Kind  lockEventKind
	Key   uint64
	Now   time.Time // the Lockout's clock when it happened
	Delay time.Duration
	Until time.Time
	Fails int
}

func (l *Lockout) emit(ev lockEvent) {
	if l.trace != nil {
		l.trace(ev)
	}
}

// wakeAll lets the waiting attempts look again.
func (e *lockEntry) wakeAll() {
	if e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
}

// ErrLockedOut is the error of an attempt Begin refuses: the user is
// locked, or the attempt would wait longer than MaxDelay. Answer as for a
// wrong password, at once, without checking the credentials. The error is a
// *LockoutRefusal.
var ErrLockedOut = errors.New("policy: user temporarily locked after failed logins")

// LockoutRefusal is Begin's refusal.
type LockoutRefusal struct {
	// Until is when the user's lock ends; zero: the attempt would have
	// waited longer than MaxDelay behind others for the user.
	Until time.Time
}

func (r *LockoutRefusal) Error() string {
	if r.Until.IsZero() {
		return ErrLockedOut.Error() + " (busy: would wait longer than max_delay)"
	}
	return ErrLockedOut.Error() + " (until " + r.Until.UTC().Format(time.RFC3339) + ")"
}

func (r *LockoutRefusal) Unwrap() error { return ErrLockedOut }

// LockoutOutcome is how a checked login attempt ended.
type LockoutOutcome int

const (
	// LockoutAbandoned: not decided (a code is still needed, the directory
	// cannot be reached, the client went away). Counts nothing.
	LockoutAbandoned LockoutOutcome = iota
	// LockoutSucceeded: the login succeeded; the user's failures are
	// forgotten (a lock is not lifted).
	LockoutSucceeded
	// LockoutFailed: a wrong password, an unknown user, a wrong second
	// factor, an expired password. Counts towards delays and the lock.
	LockoutFailed
)

// LockoutAttempt is one login attempt Begin let through; it holds one of
// the user's turns until Done.
type LockoutAttempt struct {
	l    *Lockout
	e    *lockEntry
	done bool
	// Delay is how long Begin waited for the failures' delay (not for the
	// turn), for a log line.
	Delay time.Duration
}

// NewLockout returns a Lockout for p, which must have passed Validate.
func NewLockout(p LockoutPolicy) *Lockout {
	return &Lockout{p: p, seed: maphash.MakeSeed(), users: map[uint64]*list.Element{},
		now: time.Now, sleep: sleepCtx}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (l *Lockout) key(user string) uint64 {
	return maphash.String(l.seed, strings.ToLower(user))
}

// refresh ends what has expired at now: a lock, the failures after the
// window. It reports whether e is idle (nothing left to remember).
func (l *Lockout) refresh(e *lockEntry, now time.Time) bool {
	if !e.until.IsZero() && !now.Before(e.until) {
		l.emit(lockEvent{Kind: lockFresh, Key: e.key, Now: now, Until: e.until})
		e.fails, e.last, e.until, e.next = 0, time.Time{}, time.Time{}, time.Time{}
		e.wakeAll()
	}
	if e.until.IsZero() && e.fails > 0 && now.Sub(e.last) >= l.p.window() {
		l.emit(lockEvent{Kind: lockFresh, Key: e.key, Now: now})
		e.fails = 0
		e.wakeAll()
	}
	return e.until.IsZero() && e.fails == 0 && !e.next.After(now) && e.active == 0 && e.waiting == 0
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

// remove forgets an entry; its waiting attempts look again (and find a
// fresh one), its active attempts' Done no longer touches it.
func (l *Lockout) remove(el *list.Element) {
	e := el.Value.(*lockEntry)
	delete(l.users, e.key)
	l.lru.Remove(el)
	e.wakeAll()
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

// current reports whether e is still the tracked entry of its key.
func (l *Lockout) current(e *lockEntry) bool {
	el, ok := l.users[e.key]
	return ok && el.Value.(*lockEntry) == e
}

// turns is how many attempts of a user with fails failures may be checked
// at once.
func (l *Lockout) turns(fails int) int {
	return max(1, l.p.threshold()-fails)
}

// Begin is asked before a login of user is checked. It waits for the
// attempt's turn and delay, at most until ctx is done, and returns the
// attempt, whose Done must be called exactly once. It returns a
// *LockoutRefusal (ErrLockedOut) when the user is locked or the attempt
// would wait longer than MaxDelay, and ctx's error when ctx ends first.
func (l *Lockout) Begin(ctx context.Context, user string) (*LockoutAttempt, error) {
	if l == nil {
		return &LockoutAttempt{}, nil
	}
	k := l.key(user)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l.mu.Lock()
		now := l.now()
		l.sweep(now)
		e := l.entry(k, now)
		if until := e.until; !until.IsZero() {
			l.emit(lockEvent{Kind: lockRefused, Key: k, Now: now, Until: until, Fails: e.fails})
			l.mu.Unlock()
			return nil, &LockoutRefusal{Until: until}
		}
		delayed := e.fails >= l.p.threshold()
		if e.active < l.turns(e.fails) {
			var delay time.Duration
			if delayed {
				at := maxTime(now, e.next).Add(l.p.step(e.fails))
				if at.Sub(now) > l.p.maxDelay() {
					l.emit(lockEvent{Kind: lockBusy, Key: k, Now: now, Fails: e.fails})
					l.mu.Unlock()
					return nil, &LockoutRefusal{}
				}
				e.next, delay = at, at.Sub(now)
			}
			e.active++
			l.emit(lockEvent{Kind: lockGranted, Key: k, Now: now, Delay: delay, Fails: e.fails})
			l.mu.Unlock()
			a := &LockoutAttempt{l: l, e: e, Delay: delay}
			if delay > 0 {
				if err := l.sleep(ctx, delay); err != nil {
					a.Done(LockoutAbandoned)
					return nil, err
				}
			}
			return a, nil
		}
		if delayed {
			// The earliest this attempt could start if those before it
			// (the one being checked, then the others waiting) all fail.
			at := maxTime(now, e.next)
			for i := 1; i <= e.waiting+1 && at.Sub(now) <= l.p.maxDelay(); i++ {
				at = at.Add(l.p.step(e.fails + i))
			}
			if at.Sub(now) > l.p.maxDelay() {
				l.emit(lockEvent{Kind: lockBusy, Key: k, Now: now, Fails: e.fails})
				l.mu.Unlock()
				return nil, &LockoutRefusal{}
			}
		}
		if e.wake == nil {
			e.wake = make(chan struct{})
		}
		wake := e.wake
		e.waiting++
		l.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-wake:
		}
		l.mu.Lock()
		e.waiting--
		l.mu.Unlock()
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Done reports the attempt's outcome and gives its turn back. It reports
// whether this failure locked the user. Calls after the first do nothing.
// A failure while the user is locked is not counted.
func (a *LockoutAttempt) Done(o LockoutOutcome) (locked bool) {
	l := a.l
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.done {
		return false
	}
	a.done = true
	now := l.now()
	if l.current(a.e) {
		a.e.active--
		a.e.wakeAll()
	}
	switch o {
	case LockoutSucceeded:
		if el, ok := l.users[a.e.key]; ok {
			e := el.Value.(*lockEntry)
			if e.until.IsZero() {
				l.emit(lockEvent{Kind: lockFresh, Key: e.key, Now: now})
				e.fails, e.next = 0, time.Time{}
				e.wakeAll()
				if l.refresh(e, now) {
					l.remove(el)
				}
			}
		}
	case LockoutFailed:
		l.sweep(now)
		e := l.entry(a.e.key, now)
		if !e.until.IsZero() {
			return false
		}
		e.fails++
		e.last = now
		e.wakeAll() // fewer turns, maybe delays: the waiting look again
		l.emit(lockEvent{Kind: lockFailed, Key: e.key, Now: now, Fails: e.fails})
		if e.fails >= l.p.lockAfter() {
			e.fails, e.next, e.until = 0, time.Time{}, now.Add(l.p.lockFor())
			l.emit(lockEvent{Kind: lockLocked, Key: e.key, Now: now, Until: e.until})
			return true
		}
	}
	return false
}

// Unlock forgets user's failures and lifts its lock (for the admin API).
func (l *Lockout) Unlock(user string) {
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
	now := l.now()
	l.emit(lockEvent{Kind: lockLifted, Key: e.key, Now: now, Until: e.until})
	e.fails, e.last, e.until, e.next = 0, time.Time{}, time.Time{}, time.Time{}
	e.wakeAll()
	if l.refresh(e, now) {
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
