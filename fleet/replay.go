package fleet

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replay is the fleet's memory of used TOTP codes (a totp.ReplayStore): a
// code is recorded with SET NX and a TTL of the time its step can still be
// accepted, so a code used on one replica is refused on every other.
// While the store is down, ModeLocal remembers codes in this replica
// (a code may then be replayed on another replica) and ModeClosed refuses
// to decide (the login fails as unavailable).
type Replay struct {
	st *Store

	mu    sync.Mutex
	local map[string]time.Time // user NUL step → when it can be forgotten
}

// NewReplay returns the fleet's used-code memory.
func NewReplay(st *Store) *Replay { return &Replay{st: st, local: map[string]time.Time{}} }

// maxLocal bounds the fallback memory.
const maxLocal = 1 << 16

// Use records that user used the code of step.
func (r *Replay) Use(user string, step uint64, ttl time.Duration) (bool, error) {
	k := user + "\x00" + strconv.FormatUint(step, 10)
	if r.st.Up() {
		var fresh bool
		err := r.st.do("totp", func(ctx context.Context) error {
			var err error
			fresh, err = r.st.rdb.SetNX(ctx, r.st.key("totp", user)+":"+strconv.FormatUint(step, 10), r.st.replica, ttl).Result()
			if err == redis.Nil {
				err = nil
			}
			return err
		})
		if err == nil {
			if fresh {
				r.remember(k, ttl) // for a later outage
			}
			return fresh, nil
		}
	}
	if r.st.fallback("totp") == ModeClosed {
		return false, ErrDown
	}
	return r.remember(k, ttl), nil
}

// remember records k locally; false: it was there.
func (r *Replay) remember(k string, ttl time.Duration) bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if until, ok := r.local[k]; ok && now.Before(until) {
		return false
	}
	if len(r.local) >= maxLocal {
		for key, until := range r.local {
			if !now.Before(until) {
				delete(r.local, key)
			}
		}
		if len(r.local) >= maxLocal {
			return false // full of live codes: refuse rather than forget one
		}
	}
	r.local[k] = now.Add(ttl)
	return true
}
