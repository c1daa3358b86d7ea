package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

var lockT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestLockout(t *testing.T, p LockoutPolicy) *Lockout {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return NewLockout(p)
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
	l := newTestLockout(t, LockoutPolicy{})
	now := lockT0
	wantDelays := []time.Duration{0, 0, 0, 0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	for i, want := range wantDelays {
		dec := l.Check("alice", now)
		if dec != (LockoutDecision{Delay: want}) {
			t.Fatalf("attempt %d: %+v, want delay %s", i+1, dec, want)
		}
		now = now.Add(dec.Delay)
		if locked := l.Fail("alice", now); locked != (i == len(wantDelays)-1) {
			t.Fatalf("attempt %d: locked %v", i+1, locked)
		}
	}
	lockedAt := now
	if got := (LockoutPolicy{}).MinRelock(); got != 31*time.Second {
		t.Fatalf("MinRelock %s, want 31s", got)
	}
	for _, after := range []time.Duration{0, time.Minute, 15*time.Minute - time.Nanosecond} {
		dec := l.Check("ALICE", lockedAt.Add(after))
		if dec != (LockoutDecision{Refuse: true, LockedUntil: lockedAt.Add(15 * time.Minute)}) {
			t.Fatalf("%s into the lock: %+v", after, dec)
		}
	}
	// Other names are not affected.
	if dec := l.Check("bob", lockedAt); dec != (LockoutDecision{}) {
		t.Fatalf("bob: %+v", dec)
	}
	// The lock ends after LockFor; the user starts afresh.
	now = lockedAt.Add(15 * time.Minute)
	for i := range 5 {
		if dec := l.Check("alice", now); dec != (LockoutDecision{}) {
			t.Fatalf("after the lock, attempt %d: %+v", i+1, dec)
		}
		l.Fail("alice", now)
	}
}

func TestLockoutWindowAndSucceed(t *testing.T) {
	l := newTestLockout(t, LockoutPolicy{Threshold: 2, LockAfter: 3, Window: time.Minute})
	fail := func(now time.Time) (time.Duration, bool) {
		dec := l.Check("alice", now)
		if dec.Refuse {
			t.Fatalf("refused at %v: %+v", now, dec)
		}
		return dec.Delay, l.Fail("alice", now.Add(dec.Delay))
	}
	now := lockT0
	fail(now)
	fail(now)
	// Failures are forgotten Window after the latest.
	now = now.Add(time.Minute)
	if d, _ := fail(now); d != 0 {
		t.Fatalf("delay %s after the window", d)
	}
	if d, _ := fail(now); d != 0 {
		t.Fatalf("delay %s at the 2nd failure", d)
	}
	// Succeed forgets them.
	l.Check("alice", now)
	l.Succeed("alice")
	if l.Len() != 0 {
		t.Fatalf("%d entries after Succeed", l.Len())
	}
	fail(now)
	fail(now)
	d, locked := fail(now)
	if d != time.Second || !locked {
		t.Fatalf("3rd failure: delay %s locked %v", d, locked)
	}
	now = now.Add(d)
	// Succeed does not lift a lock; Unlock does.
	l.Succeed("alice")
	if dec := l.Check("alice", now); !dec.Refuse || !dec.LockedUntil.Equal(now.Add(DefaultLockFor)) {
		t.Fatalf("Succeed lifted the lock: %+v", dec)
	}
	l.Unlock("alice")
	if dec := l.Check("alice", now); dec.Refuse {
		t.Fatal("Unlock did not lift the lock")
	}
}

// TestLockoutCannotBeExtended: failures from many addresses during a lock
// neither count nor extend it; the lock ends LockFor after it began.
func TestLockoutCannotBeExtended(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 1, LockFor: time.Minute})
	l.Check("alice", lockT0)
	if !l.Fail("alice", lockT0) {
		t.Fatal("not locked")
	}
	var wg sync.WaitGroup
	for a := range 50 { // 50 attackers, each trying every second of the lock
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range 60 {
				now := lockT0.Add(time.Duration(s)*time.Second + time.Duration(a)*time.Millisecond)
				if dec := l.Check("alice", now); !dec.Refuse || !dec.LockedUntil.Equal(lockT0.Add(time.Minute)) {
					t.Errorf("attacker %d at %s: %+v", a, now.Sub(lockT0), dec)
					return
				}
				if l.Fail("alice", now) {
					t.Errorf("attacker %d: a failure during the lock locked again", a)
					return
				}
			}
		}()
	}
	wg.Wait()
	if dec := l.Check("alice", lockT0.Add(time.Minute)); dec != (LockoutDecision{}) {
		t.Fatalf("after the lock: %+v", dec)
	}
}

// TestLockoutParallelAttacker: an attacker who sends as many attempts as
// the Lockout lets through, from any number of addresses at once, locks a
// user no sooner than MinRelock after the start, and keeps it locked at
// most LockFor out of every LockFor+MinRelock.
func TestLockoutParallelAttacker(t *testing.T) {
	for _, p := range []LockoutPolicy{
		{},
		{Threshold: 3, Delay: 500 * time.Millisecond, MaxDelay: 4 * time.Second, LockAfter: 8, LockFor: time.Minute},
		{Threshold: 1, LockAfter: 1, LockFor: time.Minute},
	} {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			l := newTestLockout(t, p)
			now, start := lockT0, lockT0
			var inflight []time.Time // answer times of the attempts let through
			locks := 0
			locked := func(until time.Time) {
				locks++
				lockedAt := until.Add(-p.lockFor())
				if took := lockedAt.Sub(start); took < p.MinRelock() {
					t.Fatalf("lock %d began %s after the fresh start, less than MinRelock %s", locks, took, p.MinRelock())
				}
				if lockedAt.Before(now.Add(-p.maxDelay())) {
					t.Fatalf("lock %d began at %v, long before now %v", locks, lockedAt, now)
				}
				// The attempts in flight are answered (refused) during the
				// lock; the attacker tries again when it ends.
				inflight = inflight[:0]
				now, start = until, until
			}
			for now.Before(lockT0.Add(2 * time.Hour)) {
				// Send attempts until one is refused.
				for {
					dec := l.Check("alice", now)
					if dec.NewLock {
						locked(dec.LockedUntil)
					}
					if dec.Refuse {
						break
					}
					inflight = append(inflight, now.Add(dec.Delay))
				}
				if len(inflight) == 0 {
					now = now.Add(time.Second)
					continue
				}
				// The earliest attempt is answered: a failure.
				earliest := 0
				for i, at := range inflight {
					if at.Before(inflight[earliest]) {
						earliest = i
					}
				}
				now = inflight[earliest]
				inflight = append(inflight[:earliest], inflight[earliest+1:]...)
				if l.Fail("alice", now) {
					locked(l.Check("alice", now).LockedUntil)
				}
			}
			if maxLocks := int(2*time.Hour/(p.lockFor()+p.MinRelock())) + 1; locks == 0 || locks > maxLocks {
				t.Fatalf("%d locks in 2h, want 1..%d", locks, maxLocks)
			}
			t.Logf("%d locks in 2h", locks)
		})
	}
}

// TestLockoutAbandonedAttempt: the LockAfter-th attempt abandoned during
// its check still locks (from when it was made) at the next attempt.
func TestLockoutAbandonedAttempt(t *testing.T) {
	l := newTestLockout(t, LockoutPolicy{Threshold: 3, LockAfter: 3})
	for range 2 {
		l.Check("alice", lockT0)
		l.Fail("alice", lockT0)
	}
	if dec := l.Check("alice", lockT0); dec != (LockoutDecision{}) {
		t.Fatalf("3rd attempt: %+v", dec)
	}
	// No Fail: the client went away. Another attempt comes.
	dec := l.Check("alice", lockT0.Add(5*time.Second))
	if want := (LockoutDecision{Refuse: true, LockedUntil: lockT0.Add(DefaultLockFor), NewLock: true}); dec != want {
		t.Fatalf("%+v, want %+v", dec, want)
	}
}

// TestLockoutCancel: an attempt taken back with Cancel (the directory did
// not answer) counts neither towards the delays nor the lock, however many
// there are; real failures around them still do, and a lock stays.
func TestLockoutCancel(t *testing.T) {
	l := newTestLockout(t, LockoutPolicy{Threshold: 3, LockAfter: 3})
	l.Check("alice", lockT0)
	l.Fail("alice", lockT0)
	for range 20 {
		if dec := l.Check("alice", lockT0); dec != (LockoutDecision{}) {
			t.Fatalf("an attempt after cancelled ones: %+v", dec)
		}
		l.Cancel("alice")
	}
	l.Cancel("bob") // unknown: nothing happens
	for range 2 {
		l.Check("alice", lockT0)
		l.Fail("alice", lockT0)
	}
	dec := l.Check("alice", lockT0)
	if !dec.Refuse {
		t.Fatalf("after three failures: %+v, want locked", dec)
	}
	l.Cancel("alice")
	if dec := l.Check("alice", lockT0); !dec.Refuse {
		t.Fatalf("Cancel lifted a lock: %+v", dec)
	}
}

// TestLockoutSameForAllNames: an unknown name is tracked exactly like a
// known one (the Lockout cannot tell them apart), and names match without
// regard to case.
func TestLockoutSameForAllNames(t *testing.T) {
	l := newTestLockout(t, LockoutPolicy{Threshold: 2, LockAfter: 4})
	trace := func(names ...string) string {
		var b strings.Builder
		now := lockT0
		for _, n := range names {
			dec := l.Check(n, now)
			now = now.Add(dec.Delay)
			fmt.Fprintf(&b, "%s/%v/%v ", dec.Delay, dec.Refuse, l.Fail(n, now))
		}
		return b.String()
	}
	a := trace("alice", "Alice", "ALICE", "alice", "alice")
	u := trace("no-such-user", "No-Such-User", "no-such-user", "NO-SUCH-USER", "no-such-user")
	if a != u {
		t.Fatalf("alice %s\nunknown %s", a, u)
	}
	if !strings.Contains(a, "true/false") || !strings.HasSuffix(a, "0s/true/false ") {
		t.Fatalf("trace %s", a)
	}
}

func TestLockoutBoundedMemory(t *testing.T) {
	l := newTestLockout(t, LockoutPolicy{Threshold: 1, LockAfter: 1, MaxUsers: 3})
	for i := range 10 {
		u := fmt.Sprintf("user%d", i)
		l.Check(u, lockT0)
		l.Fail(u, lockT0)
		if l.Len() > 3 {
			t.Fatalf("%d entries", l.Len())
		}
	}
	// The least recently active were forgotten, the latest are locked.
	if dec := l.Check("user0", lockT0); dec.Refuse {
		t.Fatal("user0 still tracked")
	}
	if dec := l.Check("user9", lockT0); !dec.Refuse {
		t.Fatal("user9 not locked")
	}
	// Idle entries are swept as time passes.
	later := lockT0.Add(DefaultLockFor + DefaultLockoutWindow)
	for range 3 {
		l.Check("someone", later)
		l.Succeed("someone")
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d entries left after everything expired", n)
	}
}

func TestLockoutNil(t *testing.T) {
	var l *Lockout
	if dec := l.Check("alice", lockT0); dec != (LockoutDecision{}) {
		t.Fatal("nil Lockout delays")
	}
	if l.Fail("alice", lockT0) {
		t.Fatal("nil Lockout locks")
	}
	l.Succeed("alice")
	l.Unlock("alice")
	if l.Len() != 0 {
		t.Fatal("nil Lockout tracks")
	}
}

// TestLockoutConcurrent: many goroutines on many names, under -race, and
// nothing left running.
func TestLockoutConcurrent(t *testing.T) {
	defer goleak.VerifyNone(t)
	l := newTestLockout(t, LockoutPolicy{MaxUsers: 50})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				u := fmt.Sprintf("u%d", (g*7+i)%80)
				now := lockT0.Add(time.Duration(i) * time.Second)
				if dec := l.Check(u, now); !dec.Refuse {
					if i%5 == 0 {
						l.Succeed(u)
					} else {
						l.Fail(u, now.Add(dec.Delay))
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("%d entries, cap 50", n)
	}
}
