package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

var lockT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// lockClock is the Lockout's clock in tests: a delay advances it at once.
type lockClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *lockClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.slept = append(c.slept, d)
	return nil
}

// set moves the clock to t, never back.
func (c *lockClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *lockClock) advance(d time.Duration) { c.set(c.now().Add(d)) }

func (c *lockClock) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

func newTestLockout(t *testing.T, p LockoutPolicy) (*Lockout, *lockClock) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	l := NewLockout(p)
	c := &lockClock{t: lockT0}
	l.now, l.sleep = c.now, c.sleep
	return l, c
}

// try begins an attempt of user and ends it with o: the delay it waited,
// whether the failure locked, and Begin's error.
func try(l *Lockout, user string, o LockoutOutcome) (time.Duration, bool, error) {
	a, err := l.Begin(context.Background(), user)
	if err != nil {
		return 0, false, err
	}
	return a.Delay, a.Done(o), nil
}

func TestLockoutPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    LockoutPolicy
		keys string
	}{
		{"defaults", LockoutPolicy{}, ""},
		{"custom", LockoutPolicy{Threshold: 3, Delay: 2 * time.Second, MaxDelay: time.Minute, LockAfter: 3, LockFor: time.Hour, Window: time.Hour, MaxUsers: 10}, ""},
		{"negative", LockoutPolicy{Threshold: -1, LockAfter: -1, MaxUsers: -1, Delay: -1, LockFor: -1, Window: -1}, "threshold lock_after max_users delay lock_for window"},
		{"lock before delays", LockoutPolicy{Threshold: 8, LockAfter: 4}, "lock_after"},
		{"lock_after default below threshold", LockoutPolicy{Threshold: 20}, "lock_after"},
		{"too many", LockoutPolicy{LockAfter: 5000, MaxUsers: 1 << 30}, "lock_after max_users"},
		{"too long", LockoutPolicy{MaxDelay: time.Hour, LockFor: 48 * time.Hour, Window: 48 * time.Hour}, "max_delay lock_for window"},
		{"max below delay", LockoutPolicy{Delay: 10 * time.Second, MaxDelay: 5 * time.Second}, "max_delay"},
		{"delay above default max", LockoutPolicy{Delay: time.Minute}, "max_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var keys []string
			for _, e := range confkey.List(tt.p.Validate()) {
				keys = append(keys, e.Key)
			}
			if got := strings.Join(keys, " "); got != tt.keys {
				t.Fatalf("keys %q, want %q (%v)", got, tt.keys, tt.p.Validate())
			}
		})
	}
}

// TestLockoutSequence: one client failing one attempt after another, with
// the defaults: five free attempts, then 1s, 2s, 4s, 8s, 16s, then a lock
// of 15 minutes, then a fresh start.
func TestLockoutSequence(t *testing.T) {
	l, clock := newTestLockout(t, LockoutPolicy{})
	wantDelays := []time.Duration{0, 0, 0, 0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	start := clock.now()
	for i, want := range wantDelays {
		d, locked, err := try(l, "alice", LockoutFailed)
		if err != nil || d != want {
			t.Fatalf("attempt %d: delay %s err %v, want delay %s", i+1, d, err, want)
		}
		if locked != (i == len(wantDelays)-1) {
			t.Fatalf("attempt %d: locked %v", i+1, locked)
		}
	}
	lockedAt := clock.now()
	if got := (LockoutPolicy{}).MinRelock(); got != 31*time.Second || lockedAt.Sub(start) < got {
		t.Fatalf("MinRelock %s, want 31s; the lock began %s after the start", got, lockedAt.Sub(start))
	}
	for _, after := range []time.Duration{0, time.Minute, 15*time.Minute - time.Nanosecond} {
		clock.set(lockedAt.Add(after))
		_, _, err := try(l, "ALICE", LockoutFailed)
		var r *LockoutRefusal
		if !errors.As(err, &r) || !errors.Is(err, ErrLockedOut) || !r.Until.Equal(lockedAt.Add(15*time.Minute)) {
			t.Fatalf("%s into the lock: %v", after, err)
		}
	}
	// Other names are not affected.
	if d, _, err := try(l, "bob", LockoutFailed); d != 0 || err != nil {
		t.Fatalf("bob: delay %s err %v", d, err)
	}
	// The lock ends after LockFor; the user starts afresh.
	clock.set(lockedAt.Add(15 * time.Minute))
	for i := range 5 {
		if d, _, err := try(l, "alice", LockoutFailed); d != 0 || err != nil {
			t.Fatalf("after the lock, attempt %d: delay %s err %v", i+1, d, err)
		}
	}
}

// TestLockoutOutcomes: sequences of outcomes (F failed, S succeeded, A
// abandoned: the 332 step, a directory down, a client gone) and what each
// attempt met: its delay, "L" when its failure locked, "R" when refused.
// Only failures count; a success forgets them; abandoned attempts count
// nothing.
func TestLockoutOutcomes(t *testing.T) {
	p := LockoutPolicy{Threshold: 2, LockAfter: 4, Delay: time.Second, MaxDelay: 4 * time.Second, LockFor: time.Minute}
	tests := []struct{ name, ops, want string }{
		{"failures", "F F F F F", "0s 0s 1s 2s/L R"},
		{"abandoned count nothing", "A A A A A A F F A A F F", "0s 0s 0s 0s 0s 0s 0s 0s 1s 1s 1s 2s/L"},
		{"the 332 step between failures", "F A A F A F", "0s 0s 0s 0s 1s 1s"},
		{"success forgets", "F F F S F F F", "0s 0s 1s 2s 0s 0s 1s"},
		{"success after abandoned", "F A S F F", "0s 0s 0s 0s 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLockout(t, p)
			var got []string
			for _, op := range strings.Fields(tt.ops) {
				o := map[string]LockoutOutcome{"F": LockoutFailed, "S": LockoutSucceeded, "A": LockoutAbandoned}[op]
				d, locked, err := try(l, "alice", o)
				switch {
				case errors.Is(err, ErrLockedOut):
					got = append(got, "R")
				case err != nil:
					t.Fatal(err)
				case locked:
					got = append(got, d.String()+"/L")
				default:
					got = append(got, d.String())
				}
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Fatalf("%s: got %s, want %s", tt.ops, g, tt.want)
			}
		})
	}
}

func TestLockoutWindowAndSucceed(t *testing.T) {
	l, clock := newTestLockout(t, LockoutPolicy{Threshold: 2, LockAfter: 3, Window: time.Minute})
	fail := func() (time.Duration, bool) {
		d, locked, err := try(l, "alice", LockoutFailed)
		if err != nil {
			t.Fatalf("refused at %v: %v", clock.now(), err)
		}
		return d, locked
	}
	fail()
	fail()
	// Failures are forgotten Window after the latest.
	clock.advance(time.Minute)
	if d, _ := fail(); d != 0 {
		t.Fatalf("delay %s after the window", d)
	}
	if d, _ := fail(); d != 0 {
		t.Fatalf("delay %s at the 2nd failure", d)
	}
	// A success forgets them.
	if d, _, err := try(l, "alice", LockoutSucceeded); d != time.Second || err != nil || l.Len() != 0 {
		t.Fatalf("delay %s err %v, %d entries after a success", d, err, l.Len())
	}
	fail()
	fail()
	d, locked := fail()
	if d != time.Second || !locked {
		t.Fatalf("3rd failure: delay %s locked %v", d, locked)
	}
	// A success does not lift a lock; Unlock does.
	if _, _, err := try(l, "alice", LockoutSucceeded); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("not locked: %v", err)
	}
	l.Unlock("alice")
	if _, _, err := try(l, "alice", LockoutSucceeded); err != nil {
		t.Fatal("Unlock did not lift the lock")
	}
}

// TestLockoutCannotBeExtended: attempts from many addresses during a lock
// are refused unchecked and do not extend it; the lock ends LockFor after
// it began.
func TestLockoutCannotBeExtended(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, clock := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 1, LockFor: time.Minute})
	if _, locked, _ := try(l, "alice", LockoutFailed); !locked {
		t.Fatal("not locked")
	}
	var wg sync.WaitGroup
	for a := range 50 { // 50 attackers, each trying every second of the lock
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range 60 {
				clock.set(lockT0.Add(time.Duration(s)*time.Second + time.Duration(a)*time.Millisecond))
				_, _, err := try(l, "alice", LockoutFailed)
				var r *LockoutRefusal
				if !errors.As(err, &r) || !r.Until.Equal(lockT0.Add(time.Minute)) {
					t.Errorf("attacker %d: %v", a, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	clock.set(lockT0.Add(time.Minute))
	if d, _, err := try(l, "alice", LockoutFailed); d != 0 || err != nil {
		t.Fatalf("after the lock: delay %s err %v", d, err)
	}
}

// checkCounter counts the checks running at once.
type checkCounter struct {
	running, peak, total atomic.Int32
	undelayed            atomic.Int32 // checks that began without a delay
	delayedWithOthers    atomic.Int32 // delayed checks that ran beside another
}

func (c *checkCounter) check(a *LockoutAttempt, d time.Duration) {
	n := c.running.Add(1)
	c.total.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	if a.Delay == 0 {
		c.undelayed.Add(1)
	} else if n > 1 {
		c.delayedWithOthers.Add(1)
	}
	time.Sleep(d)
	c.running.Add(-1)
}

// TestLockoutParallelLogins: 8 correct logins of one user at once, with no
// failures before, all get through without a delay: Threshold (5) are
// checked at once, the other 3 wait for a turn, none is refused.
func TestLockoutParallelLogins(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, clock := newTestLockout(t, LockoutPolicy{})
	var c checkCounter
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := l.Begin(ctx, "alice")
			if err != nil {
				errs <- err
				return
			}
			c.check(a, 20*time.Millisecond) // the check takes a while
			a.Done(LockoutSucceeded)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a correct login was refused: %v", err)
	}
	if c.total.Load() != 8 || c.undelayed.Load() != 8 || len(clock.sleeps()) != 0 {
		t.Fatalf("%d checked, %d without delay, delays %v", c.total.Load(), c.undelayed.Load(), clock.sleeps())
	}
	if p := c.peak.Load(); p > int32(DefaultLockoutThreshold) {
		t.Fatalf("%d checked at once, more than threshold", p)
	}
	if l.Len() != 0 {
		t.Fatalf("%d entries left", l.Len())
	}
}

// TestLockoutParallelGuesses: 50 wrong guesses at one name at once get at
// most Threshold checks before the delays start; from then on the checks
// are one at a time and delayed, and at most LockAfter are checked before
// the lock. The rest are refused unchecked.
func TestLockoutParallelGuesses(t *testing.T) {
	defer goleak.VerifyNone(t)
	p := LockoutPolicy{}
	l, _ := newTestLockout(t, p)
	var c checkCounter
	var refused atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := l.Begin(ctx, "alice")
			if err != nil {
				if !errors.Is(err, ErrLockedOut) {
					t.Errorf("not refused but %v", err)
				}
				refused.Add(1)
				return
			}
			c.check(a, 2*time.Millisecond)
			a.Done(LockoutFailed)
		}()
	}
	wg.Wait()
	t.Logf("%d checked (%d undelayed, at most %d at once), %d refused", c.total.Load(), c.undelayed.Load(), c.peak.Load(), refused.Load())
	if u := c.undelayed.Load(); u > int32(p.threshold()) {
		t.Errorf("%d guesses checked without delay, threshold %d", u, p.threshold())
	}
	if n := c.total.Load(); n > int32(p.lockAfter()) {
		t.Errorf("%d guesses checked, lock_after %d", n, p.lockAfter())
	}
	if pk := c.peak.Load(); pk > int32(p.threshold()) {
		t.Errorf("%d guesses checked at once", pk)
	}
	if n := c.delayedWithOthers.Load(); n != 0 {
		t.Errorf("%d delayed checks ran beside another", n)
	}
	if c.total.Load()+refused.Load() != 50 {
		t.Errorf("%d attempts unaccounted for", 50-c.total.Load()-refused.Load())
	}
}

// lockTrace records a Lockout's trace (appended under the Lockout's mutex,
// so in the order the Lockout changed its state).
type lockTrace struct{ events []lockEvent }

func traceLockout(l *Lockout) *lockTrace {
	tr := &lockTrace{}
	l.trace = func(ev lockEvent) { tr.events = append(tr.events, ev) }
	return tr
}

// checkLockPeriods checks the guarantee on the trace of one user's
// Lockout (whose clock started at lockT0), in the periods the Lockout itself
// saw, not in ones measured by a clock that other goroutines move: from
// each fresh start (lockT0, or when a lock was seen to end) to the next
// lock at most LockAfter attempts are let through, at most Threshold
// without a delay, and the lock begins no sooner than MinRelock after the
// fresh start; a lock lasts exactly LockFor: during it every attempt is
// refused as locked, with the lock's end, and no failure counts; it ends
// (a fresh start) no sooner than its end. It returns the locks that began
// before end, and what broke the guarantee.
func checkLockPeriods(p LockoutPolicy, events []lockEvent, end time.Time) (locks int, problems []string) {
	start, granted, undelayed := lockT0, 0, 0
	var until time.Time // the current lock's end; zero: not locked
	fail := func(i int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("event %d (%+v): %s", i, events[i], fmt.Sprintf(format, args...)))
	}
	for i, ev := range events {
		locked := !until.IsZero()
		switch ev.Kind {
		case lockGranted:
			if locked {
				fail(i, "an attempt let through during the lock until %s", until)
			}
			if granted++; ev.Delay == 0 {
				undelayed++
			}
			if granted > p.lockAfter() || undelayed > p.threshold() {
				fail(i, "%d attempts let through (%d undelayed) since the fresh start at %s", granted, undelayed, start)
			}
		case lockBusy:
			if locked {
				fail(i, "refused as busy during the lock until %s", until)
			}
		case lockRefused:
			if !locked || !ev.Until.Equal(until) {
				fail(i, "refused as locked until %s; the lock ends at %s", ev.Until, until)
			}
		case lockFailed:
			if locked {
				fail(i, "a failure counted during the lock until %s", until)
			}
		case lockLocked:
			if locked {
				fail(i, "locked again during the lock until %s", until)
			}
			if took := ev.Now.Sub(start); took < p.MinRelock() {
				fail(i, "the lock began %s after the fresh start at %s, less than MinRelock %s", took, start, p.MinRelock())
			}
			if !ev.Until.Equal(ev.Now.Add(p.lockFor())) {
				fail(i, "the lock lasts %s, not LockFor %s", ev.Until.Sub(ev.Now), p.lockFor())
			}
			if ev.Now.Before(end) {
				locks++
			}
			until = ev.Until
		case lockFresh:
			if locked && (!ev.Until.Equal(until) || ev.Now.Before(until)) {
				fail(i, "the lock until %s ended at %s", until, ev.Now)
			}
			if !locked && !ev.Until.IsZero() {
				fail(i, "a lock ended that had not begun")
			}
			start, granted, undelayed, until = ev.Now, 0, 0, time.Time{}
		default:
			fail(i, "unexpected")
		}
	}
	return locks, problems
}

// TestLockoutTrace: the trace of one client's guesses, and the checks on
// it. The trace dates a lock by the Lockout's clock when Done counted the
// failure, even when another attacker refused meanwhile moves the clock on
// to the lock's end before the locking one looks at it (what made the
// attacker test flaky when it dated locks by that look); and each breach of
// the guarantee in a trace is found.
func TestLockoutTrace(t *testing.T) {
	p := LockoutPolicy{Threshold: 3, Delay: 500 * time.Millisecond, MaxDelay: 4 * time.Second, LockAfter: 8, LockFor: time.Minute}
	l, clock := newTestLockout(t, p)
	tr := traceLockout(l)
	var lockedAt time.Time
	for i := range p.LockAfter {
		a, err := l.Begin(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if a.Done(LockoutFailed) != (i == p.LockAfter-1) {
			t.Fatalf("failure %d: locked %v", i+1, !(i == p.LockAfter-1))
		}
		lockedAt = clock.now()
	}
	// Another attacker, refused, moves the clock to the lock's end before
	// the locking one looks at it.
	_, err := l.Begin(context.Background(), "alice")
	var r *LockoutRefusal
	if !errors.As(err, &r) || !r.Until.Equal(lockedAt.Add(p.LockFor)) {
		t.Fatalf("not refused until the lock's end: %v", err)
	}
	clock.set(r.Until)
	if looked := clock.now().Sub(lockT0); looked != p.MinRelock()+p.LockFor {
		t.Fatalf("looked %s after the start", looked)
	}
	a, err := l.Begin(context.Background(), "alice") // a fresh start
	if err != nil || a.Delay != 0 {
		t.Fatalf("after the lock: %v", err)
	}
	a.Done(LockoutFailed)
	var kinds []string
	for _, ev := range tr.events {
		kinds = append(kinds, map[lockEventKind]string{lockGranted: "G", lockRefused: "R", lockBusy: "B", lockFailed: "F", lockLocked: "L", lockFresh: "S", lockLifted: "U"}[ev.Kind])
		if ev.Kind == lockLocked && !ev.Now.Equal(lockT0.Add(p.MinRelock())) {
			t.Fatalf("the lock dated %s after the start, want MinRelock %s", ev.Now.Sub(lockT0), p.MinRelock())
		}
	}
	if got, want := strings.Join(kinds, ""), "GFGFGFGFGFGFGFGFLRSGF"; got != want {
		t.Fatalf("trace %s, want %s", got, want)
	}
	end := lockT0.Add(time.Hour)
	if locks, problems := checkLockPeriods(p, tr.events, end); locks != 1 || problems != nil {
		t.Fatalf("%d locks; %q", locks, problems)
	}
	// Breaches: each edit of the trace must be found.
	iLock := slices.IndexFunc(tr.events, func(ev lockEvent) bool { return ev.Kind == lockLocked })
	iFresh := slices.IndexFunc(tr.events, func(ev lockEvent) bool { return ev.Kind == lockFresh })
	for _, tt := range []struct {
		name, want string
		edit       func(evs []lockEvent) []lockEvent
	}{
		{"an undelayed attempt too many", "4 undelayed", func(evs []lockEvent) []lockEvent {
			return slices.Insert(evs, 0, lockEvent{Kind: lockGranted, Now: lockT0})
		}},
		{"an attempt too many", "9 attempts", func(evs []lockEvent) []lockEvent {
			return slices.Insert(evs, iLock, lockEvent{Kind: lockGranted, Now: lockT0, Delay: time.Second})
		}},
		{"the lock too soon", "less than MinRelock", func(evs []lockEvent) []lockEvent {
			evs[iLock].Now = evs[iLock].Now.Add(-time.Millisecond)
			evs[iLock].Until = evs[iLock].Now.Add(p.LockFor)
			return evs
		}},
		{"the lock too long", "not LockFor", func(evs []lockEvent) []lockEvent {
			evs[iLock].Until = evs[iLock].Until.Add(time.Second)
			return evs
		}},
		{"the lock ends early", "ended at", func(evs []lockEvent) []lockEvent {
			evs[iFresh].Now = evs[iFresh].Until.Add(-time.Nanosecond)
			return evs
		}},
		{"an attempt during the lock", "during the lock", func(evs []lockEvent) []lockEvent {
			return slices.Insert(evs, iLock+1, lockEvent{Kind: lockGranted, Now: evs[iLock].Now})
		}},
		{"busy during the lock", "busy during the lock", func(evs []lockEvent) []lockEvent {
			return slices.Insert(evs, iLock+1, lockEvent{Kind: lockBusy, Now: evs[iLock].Now})
		}},
		{"a failure during the lock", "failure counted during", func(evs []lockEvent) []lockEvent {
			return slices.Insert(evs, iLock+1, lockEvent{Kind: lockFailed, Now: evs[iLock].Now})
		}},
		{"refused with another end", "refused as locked", func(evs []lockEvent) []lockEvent {
			evs[iLock+1].Until = evs[iLock+1].Until.Add(time.Second)
			return evs
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := checkLockPeriods(p, tt.edit(slices.Clone(tr.events)), end)
			if len(problems) == 0 || !strings.Contains(problems[0], tt.want) {
				t.Fatalf("problems %q, want %q", problems, tt.want)
			}
		})
	}
}

// TestLockoutParallelAttacker: 20 attackers send wrong guesses at one name
// for two hours (of the fake clock; a refused one tries again at once, or
// when the lock ends). In each period from a fresh start to a lock at most
// LockAfter guesses are checked, at most Threshold without delay, and the
// lock begins no sooner than MinRelock after the fresh start; so the name
// is locked at most LockFor out of every LockFor+MinRelock. The periods
// are the Lockout's own (its trace, in the order it changed its state): an
// attacker's look at the shared clock after Done is no measure of when the
// lock began, as others refused meanwhile may have moved the clock to the
// lock's end and beyond.
func TestLockoutParallelAttacker(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, p := range []LockoutPolicy{
		{},
		{Threshold: 3, Delay: 500 * time.Millisecond, MaxDelay: 4 * time.Second, LockAfter: 8, LockFor: time.Minute},
		{Threshold: 1, LockAfter: 1, LockFor: time.Minute},
	} {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			l, clock := newTestLockout(t, p)
			tr := traceLockout(l)
			end := lockT0.Add(2 * time.Hour)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var checked, undelayed, lockedDone, refused atomic.Int32
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for clock.now().Before(end) && ctx.Err() == nil {
						a, err := l.Begin(ctx, "alice")
						var r *LockoutRefusal
						switch {
						case errors.As(err, &r) && !r.Until.IsZero():
							// Locked: try again halfway to the lock's end,
							// at its end once that is near (so the attempts
							// probe that the lock lasts to its end).
							refused.Add(1)
							if now := clock.now(); r.Until.Sub(now) > time.Millisecond {
								clock.set(now.Add(r.Until.Sub(now) / 2))
							} else {
								clock.set(r.Until)
							}
							continue
						case errors.As(err, &r):
							refused.Add(1)
							time.Sleep(time.Millisecond) // busy: try again
							continue
						case err != nil:
							t.Error(err)
							return
						}
						checked.Add(1)
						if a.Delay == 0 {
							undelayed.Add(1)
						}
						time.Sleep(time.Millisecond) // the check
						if a.Done(LockoutFailed) {
							lockedDone.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatal("the attack did not reach the end of the two hours")
			}
			// The trace is what the attackers met.
			count := map[lockEventKind]int32{}
			var traceUndelayed int32
			for _, ev := range tr.events {
				count[ev.Kind]++
				if ev.Kind == lockGranted && ev.Delay == 0 {
					traceUndelayed++
				}
			}
			if count[lockGranted] != checked.Load() || traceUndelayed != undelayed.Load() || count[lockLocked] != lockedDone.Load() ||
				count[lockRefused]+count[lockBusy] != refused.Load() || count[lockFailed] != checked.Load() {
				t.Fatalf("the trace (%v, %d undelayed) is not what the attackers met: %d checked (%d undelayed), %d locks, %d refused",
					count, traceUndelayed, checked.Load(), undelayed.Load(), lockedDone.Load(), refused.Load())
			}
			locks, problems := checkLockPeriods(p, tr.events, end)
			for i, pr := range problems {
				if i == 10 {
					t.Errorf("and %d more", len(problems)-i)
					break
				}
				t.Error(pr)
			}
			if maxLocks := int(2*time.Hour/(p.lockFor()+p.MinRelock())) + 1; locks == 0 || locks > maxLocks {
				t.Fatalf("%d locks in 2h, want 1..%d", locks, maxLocks)
			}
			t.Logf("%d locks in 2h, %d guesses checked, %d refused", locks, checked.Load(), refused.Load())
		})
	}
}

// TestLockoutWaitEndsWithContext: an attempt waiting for a turn gives up
// when its context ends, counting nothing; one abandoned during its delay
// counts nothing either, but does not shorten the next one's.
func TestLockoutWaitEndsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, clock := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 3})
	a, err := l.Begin(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Begin(ctx, "alice"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting attempt: %v", err)
	}
	a.Done(LockoutFailed)
	a.Done(LockoutFailed) // a second Done does nothing
	// One failure: the next attempt waits 1s; abandoned during it.
	l.sleep = func(context.Context, time.Duration) error { return context.Canceled }
	if _, err := l.Begin(context.Background(), "alice"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled attempt: %v", err)
	}
	l.sleep = clock.sleep
	// Still one failure (1s), and the wait starts after the abandoned
	// one's turn: 2s.
	start := clock.now()
	d, locked, err := try(l, "alice", LockoutFailed)
	if err != nil || locked || clock.now().Sub(start) != d || d != 2*time.Second {
		t.Fatalf("after the abandoned ones: delay %s locked %v err %v", d, locked, err)
	}
	if d, locked, _ := try(l, "alice", LockoutFailed); d != 2*time.Second || !locked {
		t.Fatalf("3rd failure: delay %s locked %v", d, locked)
	}
}

// TestLockoutSameForAllNames: an unknown name is tracked exactly like a
// known one (the Lockout cannot tell them apart), and names match without
// regard to case.
func TestLockoutSameForAllNames(t *testing.T) {
	trace := func(names ...string) string {
		l, _ := newTestLockout(t, LockoutPolicy{Threshold: 2, LockAfter: 4})
		var b strings.Builder
		for _, n := range names {
			d, locked, err := try(l, n, LockoutFailed)
			fmt.Fprintf(&b, "%s/%v/%v ", d, err != nil, locked)
		}
		return b.String()
	}
	a := trace("alice", "Alice", "ALICE", "alice", "alice")
	u := trace("no-such-user", "No-Such-User", "no-such-user", "NO-SUCH-USER", "no-such-user")
	if a != u {
		t.Fatalf("alice %s\nunknown %s", a, u)
	}
	if a != "0s/false/false 0s/false/false 1s/false/false 2s/false/true 0s/true/false " {
		t.Fatalf("trace %s", a)
	}
}

func TestLockoutBoundedMemory(t *testing.T) {
	l, clock := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 1, MaxUsers: 3})
	for i := range 10 {
		try(l, fmt.Sprintf("user%d", i), LockoutFailed)
		if l.Len() > 3 {
			t.Fatalf("%d entries", l.Len())
		}
	}
	// The least recently active were forgotten, the latest are locked.
	if _, _, err := try(l, "user0", LockoutSucceeded); err != nil {
		t.Fatal("user0 still tracked")
	}
	if _, _, err := try(l, "user9", LockoutSucceeded); err == nil {
		t.Fatal("user9 not locked")
	}
	// Idle entries are swept as time passes.
	clock.advance(DefaultLockFor + DefaultLockoutWindow)
	for range 3 {
		try(l, "someone", LockoutSucceeded)
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d entries left after everything expired", n)
	}
}

// TestLockoutEvictedWhileBusy: a name forgotten (beyond MaxUsers) while its
// attempts are checked or waiting: the waiting ones start again on a fresh
// entry, the checked ones' Done does not disturb it.
func TestLockoutEvictedWhileBusy(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, _ := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 5, MaxUsers: 1})
	a, err := l.Begin(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		b, err := l.Begin(context.Background(), "alice") // waits for a's turn
		if err == nil {
			b.Done(LockoutSucceeded)
		}
		got <- err
	}()
	for {
		l.mu.Lock()
		w := l.users[l.key("alice")].Value.(*lockEntry).waiting
		l.mu.Unlock()
		if w == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	try(l, "bob", LockoutSucceeded) // forgets alice: the waiting attempt goes on
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	a.Done(LockoutAbandoned)
	if n := l.Len(); n > 1 {
		t.Fatalf("%d entries", n)
	}
}

func TestLockoutNil(t *testing.T) {
	var l *Lockout
	a, err := l.Begin(context.Background(), "alice")
	if err != nil || a.Delay != 0 {
		t.Fatal("nil Lockout delays")
	}
	if a.Done(LockoutFailed) {
		t.Fatal("nil Lockout locks")
	}
	l.Unlock("alice")
	if l.Len() != 0 {
		t.Fatal("nil Lockout tracks")
	}
}

// TestLockoutConcurrent: many goroutines on many names, under -race, and
// nothing left running.
func TestLockoutConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, clock := newTestLockout(t, LockoutPolicy{MaxUsers: 50})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				u := fmt.Sprintf("u%d", (g*7+i)%80)
				clock.advance(time.Duration(g) * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				a, err := l.Begin(ctx, u)
				cancel()
				if err != nil {
					if !errors.Is(err, ErrLockedOut) {
						t.Error(err)
						return
					}
					continue
				}
				a.Done([]LockoutOutcome{LockoutSucceeded, LockoutFailed, LockoutFailed, LockoutAbandoned}[i%4])
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("%d entries, cap 50", n)
	}
}
