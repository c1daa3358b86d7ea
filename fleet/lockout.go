package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/policy"
)

// Lockout makes the per-user lockout (auth.lockout) count failed logins
// and lock users across the fleet: the failures of a user name within the
// window are one counter in Redis, and the LockAfter-th locks the name on
// every replica for LockFor (a key whose TTL is the lock). The delays and
// the turns of parallel attempts stay the replica's own (the local
// throttle, policy.Lockout, still runs under it). User names are kept as
// a hash of the lower-cased name.
//
// While the store is down, ModeLocal counts with the local throttle only,
// and ModeClosed refuses logins as unavailable.
//
// It is an auth.Throttle.
type Lockout struct {
	st    *Store
	p     policy.LockoutPolicy // Effective
	local auth.Throttle
}

// NewLockout returns the fleet's lockout for p over local (the replica's
// throttle, e.g. auth.LockoutThrottle(policy.NewLockout(p))).
func NewLockout(st *Store, p policy.LockoutPolicy, local auth.Throttle) *Lockout {
	return &Lockout{st: st, p: p.Effective(), local: local}
}

func (l *Lockout) keys(user string) []string {
	h := sha256.Sum256([]byte(strings.ToLower(user)))
	tag := hex.EncodeToString(h[:16])
	return []string{l.st.key("lock", tag), l.st.key("lfail", tag)}
}

// Begin refuses a user locked in the fleet (auth.ErrLocked), then asks the
// local throttle.
func (l *Lockout) Begin(ctx context.Context, user string) (auth.Attempt, error) {
	keys := l.keys(user)
	if l.st.Up() {
		var ttl time.Duration
		err := l.st.do("lockout", func(ctx context.Context) error {
			var err error
			ttl, err = l.st.rdb.PTTL(ctx, keys[0]).Result()
			return err
		})
		switch {
		case err == nil && ttl > 0:
			return nil, fmt.Errorf("%w: %w", auth.ErrLocked, &policy.LockoutRefusal{Until: time.Now().Add(ttl)})
		case err != nil && l.st.fallback("lockout") == ModeClosed:
			return nil, ErrDown
		}
	} else if l.st.fallback("lockout") == ModeClosed {
		return nil, ErrDown
	}
	a, err := l.local.Begin(ctx, user)
	if err != nil {
		return nil, err
	}
	return &lockAttempt{l: l, keys: keys, local: a}, nil
}

// failScript counts a failure of a user not locked: KEYS lock, failures;
// ARGV window ms, lock_after, lock_for ms. 1: this failure locked.
var failScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0`)

type lockAttempt struct {
	l     *Lockout
	keys  []string
	local auth.Attempt
}

// Done reports the outcome locally and to the fleet: a failure counts, a
// success forgets the failures (not a lock).
func (a *lockAttempt) Done(o auth.Outcome) {
	a.local.Done(o)
	l := a.l
	if !l.st.Up() || (o != auth.Failed && o != auth.Succeeded) {
		return
	}
	_ = l.st.do("lockout", func(ctx context.Context) error {
		if o == auth.Succeeded {
			return l.st.rdb.Del(ctx, a.keys[1]).Err()
		}
		return failScript.Run(ctx, l.st.rdb, a.keys, l.p.Window.Milliseconds(), l.p.LockAfter, l.p.LockFor.Milliseconds()).Err()
	})
}

// Unlock lifts a user's fleet-wide lock and failures (and the local ones
// when the local throttle has an Unlock).
func (l *Lockout) Unlock(user string) error {
	if u, ok := l.local.(interface{ Unlock(string) }); ok {
		u.Unlock(user)
	}
	keys := l.keys(user)
	return l.st.do("lockout", func(ctx context.Context) error { return l.st.rdb.Del(ctx, keys...).Err() })
}
