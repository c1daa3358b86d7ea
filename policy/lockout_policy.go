package policy

import (
	"errors"
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
// whoever sent it and whether or not the user exists; nothing else does. The zero value
// delays from the 5th failure (1s, doubling to 30s), locks for 15 minutes
// at the 10th, forgets failures 15 minutes after the latest, and tracks at
// most 100000 user names.
type LockoutPolicy struct {
	// Threshold is the number of failures after which each further attempt
	// is delayed; Threshold minus the failures (at least 1) is how many
	// attempts of the user are checked at once. Zero: 5.
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
