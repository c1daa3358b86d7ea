package fleet

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session places are leases: members of a sorted set per address or user,
// scored with their expiry in Redis's clock. A live session's replica
// renews them every third of the lease; a replica that dies stops, and its
// places expire within the lease. Every script reads the time from Redis
// (TIME), so replicas' clocks do not matter.

// luaNow is the Redis time in milliseconds.
const luaNow = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// acquireScript takes a place in KEYS[1] for id ARGV[1] unless ARGV[2] (> 0)
// places are held; ARGV[3] is the lease in ms. 1: held, 0: full.
var acquireScript = redis.NewScript(luaNow + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local limit = tonumber(ARGV[2])
  if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return 1`)

// renewScript extends (or puts back, after Redis lost it) the lease
// ARGV[1] in KEYS[1] by ARGV[2] ms.
var renewScript = `
local lease = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * lease)
return 1`

// hold remembers a lease for the heartbeat.
func (s *Store) hold(r leaseRef) {
	s.mu.Lock()
	s.leases[r] = struct{}{}
	s.mu.Unlock()
}

// drop gives a lease back: forgotten by the heartbeat, removed from Redis
// when it is up (else it expires by itself).
func (s *Store) drop(r leaseRef) {
	s.mu.Lock()
	_, ok := s.leases[r]
	delete(s.leases, r)
	s.mu.Unlock()
	if !ok || !s.Up() {
		return
	}
	_ = s.do("release", func(ctx context.Context) error { return s.rdb.ZRem(ctx, r.key, r.id).Err() })
}

// acquire takes a place for id in key, limit places at most (0: no
// limit). ok false: full.
func (s *Store) acquire(op, key, id string, limit int) (ok bool, err error) {
	err = s.do(op, func(ctx context.Context) error {
		n, err := acquireScript.Run(ctx, s.rdb, []string{key}, id, limit, s.cfg.lease().Milliseconds()).Int()
		ok = n == 1
		return err
	})
	if err == nil && ok {
		s.hold(leaseRef{key, id})
	}
	return ok, err
}

// heartbeat renews the held leases every third of the lease.
func (s *Store) heartbeat() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.lease() / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.Up() {
			s.renewAll()
		}
	}
}

// renewAll renews every held lease in one pipeline.
func (s *Store) renewAll() {
	s.mu.Lock()
	held := make([]leaseRef, 0, len(s.leases))
	for r := range s.leases {
		held = append(held, r)
	}
	s.mu.Unlock()
	if len(held) == 0 {
		return
	}
	ms := s.cfg.lease().Milliseconds()
	_ = s.do("renew", func(ctx context.Context) error {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, r := range held {
				p.Eval(ctx, luaNow+renewScript, []string{r.key}, r.id, ms)
			}
			return nil
		})
		return err
	})
}
