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
	b := &Bans{st: st, cfg: cfg.Effective(), cache: cache, localOnly: map[netip.Addr]bool{}}
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
			b.cache.Put(ban)
			return ban, nil
		}
	}
	b.st.fallback("ban")
	ban, err := b.cache.Ban(ip, dur, reason)
	if err == nil {
		b.mu.Lock()
		b.localOnly[ip] = true
		b.mu.Unlock()
	}
	return ban, err
}

// Unban lifts the ban of ip in the whole fleet and pardons it (failures
// and escalation history forgotten). It reports whether ip was banned.
// While the store is down only this replica's cache is changed.
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
			local := b.cache.Unban(ip)
			return n == 1 || local
		}
	}
	b.st.fallback("unban")
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

// listen follows the channel: bans and unbans of any replica go into the
// cache; each (re)subscription re-syncs the cache.
func (b *Bans) listen() {
	defer b.st.wg.Done()
	ctx := b.st.ctx
	ps := b.st.rdb.Subscribe(ctx, b.st.channel())
	b.st.mu.Lock()
	b.st.stops = append(b.st.stops, func() { _ = ps.Close() })
	b.st.mu.Unlock()
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				_ = ps.Ping(ctx) // an error here reconnects at the next receive
				continue
			}
			b.st.setDown(err)
			select { // go-redis reconnects and subscribes again at the next receive
			case <-ctx.Done():
				return
			case <-time.After(probeEvery / 2):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				go b.resync()
			}
		case *redis.Message:
			b.apply(m.Payload)
		}
	}
}

// apply installs one message of the channel into the cache.
func (b *Bans) apply(payload string) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		b.st.log.Warn().Err(err).Msg("fleet: a message on the ban channel does not parse")
		return
	}
	switch m.Op {
	case "ban":
		if m.Ban == nil {
			return
		}
		ban, err := m.Ban.ban()
		if err != nil {
			return
		}
		b.mu.Lock()
		delete(b.localOnly, policy.Normalize(ban.IP))
		b.mu.Unlock()
		b.cache.Put(ban)
	case "unban":
		if ip, err := netip.ParseAddr(m.IP); err == nil {
			b.mu.Lock()
			delete(b.localOnly, policy.Normalize(ip))
			b.mu.Unlock()
			b.cache.Unban(ip)
		}
	}
}

// resync pushes the bans made while the store was down to Redis, then
// makes the cache what Redis holds.
func (b *Bans) resync() {
	if !b.st.Up() {
		return
	}
	b.pushLocal()
	bans, err := b.fetch()
	if err != nil {
		return
	}
	in := make(map[netip.Addr]bool, len(bans))
	for _, ban := range bans {
		in[ban.IP] = true
		b.cache.Put(ban)
	}
	b.mu.Lock()
	keep := make(map[netip.Addr]bool, len(b.localOnly))
	for ip := range b.localOnly {
		keep[ip] = true
	}
	b.mu.Unlock()
	for _, ban := range b.cache.List() {
		if !in[ban.IP] && !keep[ban.IP] {
			b.cache.Unban(ban.IP) // lifted in the fleet while this replica did not hear
		}
	}
	b.st.log.Info().Int("bans", len(bans)).Msg("fleet: ban cache synced with the store")
}

// pushLocal writes the bans made while the store was down into Redis
// (unless the address got a ban there meanwhile).
func (b *Bans) pushLocal() {
	b.mu.Lock()
	ips := make([]netip.Addr, 0, len(b.localOnly))
	for ip := range b.localOnly {
		ips = append(ips, ip)
	}
	b.mu.Unlock()
	for _, ip := range ips {
		until, ok := b.cache.Banned(ip)
		if ok {
			left := time.Until(until)
			reason := "while the fleet's store was down"
			for _, c := range b.cache.List() {
				if c.IP == ip {
					reason = c.Reason
				}
			}
			err := b.st.do("ban", func(ctx context.Context) error {
				err := banScript.Run(ctx, b.st.rdb, b.keys(ip), ip.String(), max(left.Milliseconds(), 1), reason, b.st.channel(), b.st.replica, "nx").Err()
				if errors.Is(err, redis.Nil) {
					return nil
				}
				return err
			})
			if err != nil {
				return
			}
		}
		b.mu.Lock()
		delete(b.localOnly, ip)
		b.mu.Unlock()
	}
}

// String names the store, for logs.
func (b *Bans) String() string {
	return "fleet bans (" + strings.Join(b.st.cfg.Addresses, ",") + ")"
}
