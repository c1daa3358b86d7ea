package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/ftpsgate/ftpsgate/policy"
)

// LockoutThrottle is l, policy's per-user lockout, as a Throttle.
func LockoutThrottle(l *policy.Lockout) Throttle { return lockoutThrottle{l} }

// lockoutThrottle adapts policy.Lockout to Throttle.
type lockoutThrottle struct{ l *policy.Lockout }

func (t lockoutThrottle) Begin(ctx context.Context, user string) (Attempt, error) {
	a, err := t.l.Begin(ctx, user)
	if errors.Is(err, policy.ErrLockedOut) {
		return nil, fmt.Errorf("%w: %w", ErrLocked, err)
	}
	if err != nil {
		return nil, err
	}
	return lockoutAttempt{a}, nil
}

// lockoutAttempt adapts policy.LockoutAttempt to Attempt.
type lockoutAttempt struct{ a *policy.LockoutAttempt }

func (a lockoutAttempt) Done(o Outcome) {
	switch o {
	case Succeeded:
		a.a.Done(policy.LockoutSucceeded)
	case Failed:
		a.a.Done(policy.LockoutFailed)
	default:
		a.a.Done(policy.LockoutAbandoned)
	}
}
