package fleet

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/redis/go-redis/v9"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Admission is the gate at accept for a fleet: this replica's
// policy.Admission first (the ban cache, its own copy of every limit,
// the pre-login and total caps, which stay per replica), then the fleet's
// connection rate and session places of the address in Redis, and, at
// login, the user's place. A session's places are leases renewed while it
// lives and given back at its end.
//
// While the store is down, ModeLocal admits on the local decision alone
// and ModeClosed refuses with policy.ErrStoreDown.
//
// It is a proxy.Admission.
type Admission struct {
	st     *Store
	local  *policy.Admission
	limits policy.Limits

	interval, tau int64 // connection rate in µs (GCRA), as policy.Admission keeps it
}

// NewAdmission returns the fleet's gate for l (which must have passed
// Validate), checking the bans of b.
func NewAdmission(st *Store, l policy.Limits, b *Bans) *Admission {
	a := &Admission{st: st, local: policy.NewAdmission(l, b.Cache()), limits: l}
	if l.ConnRate > 0 {
		const maxFill = int64(24 * time.Hour / time.Microsecond) // as policy bounds its timings
		a.interval = min(max(int64(math.Ceil(1e6/l.ConnRate)), 1), maxFill)
		burst := l.ConnBurst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(l.ConnRate)))
		}
		a.tau = int64(min(float64(burst-1)*float64(a.interval), float64(maxFill)))
	}
	return a
}

// Local is this replica's admission (its counters, for the admin API).
func (a *Admission) Local() *policy.Admission { return a.local }

// CommandLimiter is the local one: command rates are per session.
func (a *Admission) CommandLimiter() *rate.Limiter { return a.local.CommandLimiter() }

// Exempt reports whether ip is allowlisted.
func (a *Admission) Exempt(ip netip.Addr) bool { return a.local.Exempt(ip) }

// admitScript is the fleet's connection rate (GCRA, in µs) and the
// address's session place. KEYS: rate, places. ARGV: interval µs, tau µs,
// lease id, max places, lease ms. 1: admitted, -1: rate, -2: full.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(us / 1000)
local interval = tonumber(ARGV[1])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if tat < us then tat = us end
  if tat - us > tonumber(ARGV[2]) then return -1 end
  tat = tat + interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - us) / 1000) + 1)
end
local limit = tonumber(ARGV[4])
if limit > 0 then
  local lease = tonumber(ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= limit then return -2 end
  redis.call('ZADD', KEYS[2], now + lease, ARGV[3])
  redis.call('PEXPIRE', KEYS[2], 2 * lease)
end
return 1`)

// Admit decides whether a new connection from ip may become a session.
func (a *Admission) Admit(ip netip.Addr) (*policy.Ticket, error) {
	t, err := a.local.Admit(ip)
	if err != nil {
		return nil, err
	}
	ip = t.IP()
	if a.local.Exempt(ip) || (a.interval == 0 && a.limits.MaxSessionsPerIP == 0 && a.limits.MaxSessionsPerUser == 0) {
		return t, nil
	}
	l := &lease{a: a}
	if !a.st.Up() {
		if a.st.fallback("admit") == ModeClosed {
			t.Release()
			return nil, policy.ErrStoreDown
		}
		return t, nil // per replica until the store is back
	}
	id := a.st.newID()
	key := a.st.key("sess:ip", ip.String())
	var n int
	err = a.st.do("admit", func(ctx context.Context) error {
		var err error
		n, err = admitScript.Run(ctx, a.st.rdb, []string{a.st.key("rate", ip.String()), key},
			a.interval, a.tau, id, a.limits.MaxSessionsPerIP, a.st.cfg.lease().Milliseconds()).Int()
		return err
	})
	switch {
	case err != nil:
		if a.st.fallback("admit") == ModeClosed {
			t.Release()
			return nil, policy.ErrStoreDown
		}
		return t, nil
	case n == -1:
		t.Release()
		return nil, policy.ErrConnRate
	case n == -2:
		t.Release()
		return nil, policy.ErrTooManyFromIP
	}
	if a.limits.MaxSessionsPerIP > 0 {
		l.ip = leaseRef{key, id}
		a.st.hold(l.ip)
	}
	t.Attach(l)
	return t, nil
}

// lease is a session's places in the fleet: its address's and, once
// logged in, its user's. It is the ticket's policy.TicketHook.
type lease struct {
	a  *Admission
	mu sync.Mutex
	ip leaseRef // zero: none
	// user's place; zero: none
	user leaseRef
}

// Login takes a place for user in the fleet (giving back the place of a
// previous user of the session).
func (l *lease) Login(user string) error {
	a := l.a
	if a.limits.MaxSessionsPerUser == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.user != (leaseRef{}) {
		a.st.drop(l.user)
		l.user = leaseRef{}
	}
	if !a.st.Up() {
		if a.st.fallback("login") == ModeClosed {
			return policy.ErrStoreDown
		}
		return nil
	}
	ref := leaseRef{a.st.key("sess:user", user), a.st.newID()}
	ok, err := a.st.acquire("login", ref.key, ref.id, a.limits.MaxSessionsPerUser)
	switch {
	case err != nil:
		if a.st.fallback("login") == ModeClosed {
			return policy.ErrStoreDown
		}
		return nil
	case !ok:
		return policy.ErrTooManyForUser
	}
	l.user = ref
	return nil
}

// Release gives the session's places back.
func (l *lease) Release() {
	l.mu.Lock()
	ip, user := l.ip, l.user
	l.ip, l.user = leaseRef{}, leaseRef{}
	l.mu.Unlock()
	for _, r := range []leaseRef{ip, user} {
		if r != (leaseRef{}) {
			l.a.st.drop(r)
		}
	}
}

// UserPlaces is how many places user holds in the fleet now (for tests
// and the admin API).
func (a *Admission) UserPlaces(ctx context.Context, user string) (int64, error) {
	key := a.st.key("sess:user", user)
	now := time.Now().UnixMilli()
	return a.st.rdb.ZCount(ctx, key, "("+strconv.FormatInt(now, 10), "+inf").Result()
}
