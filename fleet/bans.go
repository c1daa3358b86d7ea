package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Bans is the fleet's ban list: Redis holds the bans (their end is the
// key's TTL), the failures in the window and the escalation history; a
// local policy.Defender is the cache that admission reads, kept current by
// pub/sub and re-synced whenever the subscription or the store comes back.
// While the store is down, failures are counted and bans made in the
// cache (this replica only); bans made then are pushed to Redis when it is
// back.
//
// It is a proxy.Bans and the admin API's ban store.
type Bans struct {
	st    *Store
	cfg   policy.BanConfig // Effective
	cache *policy.Defender

	mu        sync.Mutex
	localOnly map[netip.Addr]bool // banned in the cache while the store was down
	unbanned  map[netip.Addr]bool // unbanned by hand while the store was down
	// While a re-sync runs (syncing), touched is when (in changes, gen)
	// each address's ban last changed in the cache, so that the re-sync
	// does not undo a change that landed after it read Redis.
	touched map[netip.Addr]uint64
	gen     uint64
	syncing int

	afterFetch func()       // tests: runs in a re-sync between reading Redis and applying it
	applied    atomic.Int64 // messages of the channel applied (tests wait for them)
}

// touch records a change of ip's ban in the cache.
func (b *Bans) touch(ip netip.Addr) {
	b.mu.Lock()
	b.gen++
	if b.syncing > 0 {
		b.touched[policy.Normalize(ip)] = b.gen
	}
	b.mu.Unlock()
}

// wireBan is a ban in Redis and on the channel (times in ms since the
// epoch, Redis's clock).
type wireBan struct {
	IP       string `json:"ip"`
	Since    int64  `json:"since"`
	Until    int64  `json:"until"`
	Reason   string `json:"reason"`
	Offences int    `json:"offences"`
}

func (w wireBan) ban() (policy.Ban, error) {
	ip, err := netip.ParseAddr(w.IP)
	if err != nil {
		return policy.Ban{}, err
	}
	return policy.Ban{IP: ip, Since: time.UnixMilli(w.Since), Until: time.UnixMilli(w.Until), Reason: w.Reason, Offences: w.Offences}, nil
}

func parseBan(s string) (policy.Ban, error) {
	var w wireBan
	if err := json.Unmarshal([]byte(s), &w); err != nil {
		return policy.Ban{}, err
	}
	return w.ban()
}

// message is what the channel carries.
type message struct {
	Op   string   `json:"op"` // ban or unban
	From string   `json:"from"`
	IP   string   `json:"ip"`
	Ban  *wireBan `json:"ban"`
}

// NewBans returns the fleet's ban list for cfg (bans.state_file is not
// used: persistence is Redis's) and starts following the channel.
func NewBans(st *Store, cfg policy.BanConfig) (*Bans, error) {
	cfg.StateFile = ""
	cache, err := policy.NewDefender(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("fleet: bans: %w", err)
	}
	b := &Bans{st: st, cfg: cfg.Effective(), cache: cache, localOnly: map[netip.Addr]bool{}, unbanned: map[netip.Addr]bool{}, touched: map[netip.Addr]uint64{}}
	st.OnUp(b.resync)
	st.wg.Add(1)
	go b.listen()
	return b, nil
}

// Cache is the local cache: the Defender admission checks.
func (b *Bans) Cache() *policy.Defender { return b.cache }

// Subscribe adds f to the functions told of every ban and unban this
// replica learns (its own and the fleet's).
func (b *Bans) Subscribe(f func(policy.BanEvent)) { b.cache.Subscribe(f) }

// Close does nothing: the Store is closed by its owner.
func (b *Bans) Close() error { return nil }

// Banned reports whether ip is banned (from the cache, no Redis call).
func (b *Bans) Banned(ip netip.Addr) (time.Time, bool) { return b.cache.Banned(ip) }

// CacheSize is the number of bans in the cache.
func (b *Bans) CacheSize() int { return b.cache.Stats().Bans }

func (b *Bans) keys(ip netip.Addr) []string {
	tag := ip.String()
	return []string{b.st.key("ban", tag), b.st.key("fail", tag), b.st.key("off", tag)}
}

// Record counts an event of kind from ip in the fleet and reports whether
// ip is banned. A ban is installed in the cache at once (and reaches the
// other replicas through the channel).
func (b *Bans) Record(ip netip.Addr, kind string) bool {
	ip = policy.Normalize(ip)
	w := b.cfg.Weight(kind)
	if w == 0 || !ip.IsValid() || b.cfg.Allowed(ip) {
		return false
	}
	if _, banned := b.cache.Banned(ip); banned {
		return true
	}
	if !b.st.Up() {
		return b.recordLocal(ip, kind)
	}
	var res []any
	err := b.st.do("record", func(ctx context.Context) error {
		var err error
		res, err = recordScript.Run(ctx, b.st.rdb, b.keys(ip),
			ip.String(), w, b.cfg.MaxFailures, b.cfg.Window.Milliseconds(), b.cfg.Duration.Milliseconds(),
			b.cfg.MaxDuration.Milliseconds(), kind, b.cfg.Window.String(), b.st.channel(), b.st.newID(), b.st.replica).Slice()
		return err
	})
	if err != nil {
		return b.recordLocal(ip, kind)
	}
	if len(res) < 2 {
		return false
	}
	s, _ := res[1].(string)
	ban, err := parseBan(s)
	if err != nil {
		b.st.log.Error().Err(err).Msg("fleet: a ban in the store does not parse")
		return true
	}
	b.touch(ip)
	b.cache.Put(ban)
	return true
}

// recordLocal counts in the cache while the store is down.
func (b *Bans) recordLocal(ip netip.Addr, kind string) bool {
	b.st.fallback("record")
	banned := b.cache.Record(ip, kind)
	if banned {
		b.mu.Lock()
		b.localOnly[ip] = true
		delete(b.unbanned, ip)
		b.mu.Unlock()
	}
	return banned
}

// Ban bans ip for dur (0: bans.duration) in the whole fleet. While the
// store is down the ban is made in this replica and pushed to the store
// when it is back.
func (b *Bans) Ban(ip netip.Addr, dur time.Duration, reason string) (policy.Ban, error) {
	ip = policy.Normalize(ip)
	switch {
	case !ip.IsValid():
		return policy.Ban{}, policy.ErrInvalidAddr
	case dur < 0:
		return policy.Ban{}, policy.ErrBadDuration
	case b.cfg.Allowed(ip):
		return policy.Ban{}, policy.ErrAllowlisted
	}
	if dur == 0 {
		dur = b.cfg.Duration
	}
	if b.st.Up() {
		var s string
		err := b.st.do("ban", func(ctx context.Context) error {
			var err error
			s, err = banScript.Run(ctx, b.st.rdb, b.keys(ip), ip.String(), dur.Milliseconds(), reason, b.st.channel(), b.st.replica, "").Text()
			return err
		})
		if err == nil {
			ban, err := parseBan(s)
			if err != nil {
				return policy.Ban{}, fmt.Errorf("fleet: ban: %w", err)
			}
			b.touch(ip)
			b.cache.Put(ban)
			return ban, nil
		}
	}
	b.st.fallback("ban")
	ban, err := b.cache.Ban(ip, dur, reason)
	if err == nil {
		b.mu.Lock()
		b.localOnly[ip] = true
		delete(b.unbanned, ip)
		b.mu.Unlock()
	}
	return ban, err
}

// Unban lifts the ban of ip in the whole fleet and pardons it (failures
// and escalation history forgotten). It reports whether ip was banned.
// While the store is down this replica's cache is changed at once and the
// fleet's ban when the store is back.
func (b *Bans) Unban(ip netip.Addr) bool {
	ip = policy.Normalize(ip)
	b.mu.Lock()
	delete(b.localOnly, ip)
	b.mu.Unlock()
	if b.st.Up() {
		var n int
		err := b.st.do("unban", func(ctx context.Context) error {
			var err error
			n, err = unbanScript.Run(ctx, b.st.rdb, b.keys(ip), ip.String(), b.st.channel(), b.st.replica).Int()
			return err
		})
		if err == nil {
			b.touch(ip)
			local := b.cache.Unban(ip)
			return n == 1 || local
		}
	}
	b.st.fallback("unban")
	b.mu.Lock()
	b.unbanned[ip] = true // lifted in the fleet when the store is back
	b.mu.Unlock()
	return b.cache.Unban(ip)
}

// List returns the bans in force in the fleet, sorted by address: from
// Redis, or from the cache while the store is down.
func (b *Bans) List() []policy.Ban {
	if b.st.Up() {
		if bans, err := b.fetch(); err == nil {
			return bans
		}
	}
	b.st.fallback("list")
	return b.cache.List()
}

// fetch reads every ban from Redis.
func (b *Bans) fetch() ([]policy.Ban, error) {
	var bans []policy.Ban
	pattern := b.st.cfg.prefix() + "ban:{*}"
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var keys []string
		it := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		if err := it.Err(); err != nil {
			return err
		}
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for _, cmd := range cmds {
			s, err := cmd.(*redis.StringCmd).Result()
			if err != nil {
				continue // expired meanwhile
			}
			if ban, err := parseBan(s); err == nil {
				bans = append(bans, ban)
			}
		}
		return nil
	}
	// The sync may walk many keys: a longer deadline than a connection's.
	err := b.st.do("list", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*b.st.cfg.timeout())
		defer cancel()
		var mu sync.Mutex
		if cc, ok := b.st.rdb.(*redis.ClusterClient); ok {
			return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				return scan(ctx, c)
			})
		}
		return scan(ctx, b.st.rdb)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(bans, func(x, y policy.Ban) int { return x.IP.Compare(y.IP) })
	return bans, nil
}

// String names the store, for logs.
func (b *Bans) String() string {
	return "fleet bans (" + strings.Join(b.st.cfg.Addresses, ",") + ")"
}
