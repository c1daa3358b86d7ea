package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Keeping the cache current: the channel, and the re-sync after a
// reconnect.

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
			b.st.log.Debug().Str("kind", m.Kind).Bool("store_up", b.st.Up()).Msg("fleet: ban channel subscription")
			if m.Kind == "subscribe" {
				b.st.wg.Add(1)
				go func() { defer b.st.wg.Done(); b.resync() }()
			}
		case *redis.Message:
			b.apply(m.Payload)
		}
	}
}

// apply installs one message of the channel into the cache.
func (b *Bans) apply(payload string) {
	defer b.applied.Add(1)
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
		b.touch(ban.IP)
		b.cache.Put(ban)
	case "unban":
		if ip, err := netip.ParseAddr(m.IP); err == nil {
			b.mu.Lock()
			delete(b.localOnly, policy.Normalize(ip))
			b.mu.Unlock()
			b.touch(ip)
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
	b.pushUnbans()
	b.pushLocal()
	b.mu.Lock()
	start := b.gen
	b.syncing++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.syncing--; b.syncing == 0 {
			clear(b.touched)
		}
		b.mu.Unlock()
	}()
	bans, err := b.fetch()
	if err != nil {
		return
	}
	if b.afterFetch != nil {
		b.afterFetch()
	}
	b.mu.Lock()
	// What changed since the fetch began is newer than what it read.
	keep := make(map[netip.Addr]bool, len(b.localOnly))
	for ip := range b.localOnly {
		keep[ip] = true
	}
	for ip, g := range b.touched {
		if g > start {
			keep[ip] = true
		}
	}
	b.mu.Unlock()
	in := make(map[netip.Addr]bool, len(bans))
	for _, ban := range bans {
		in[ban.IP] = true
		if !keep[ban.IP] {
			b.cache.Put(ban)
		}
	}
	for _, ban := range b.cache.List() {
		if !in[ban.IP] && !keep[ban.IP] {
			b.cache.Unban(ban.IP) // lifted in the fleet while this replica did not hear
		}
	}
	b.st.log.Info().Int("bans", len(bans)).Msg("fleet: ban cache synced with the store")
}

// pushUnbans lifts in Redis the bans lifted by hand while the store was
// down.
func (b *Bans) pushUnbans() {
	b.mu.Lock()
	ips := make([]netip.Addr, 0, len(b.unbanned))
	for ip := range b.unbanned {
		ips = append(ips, ip)
	}
	b.mu.Unlock()
	for _, ip := range ips {
		err := b.st.do("unban", func(ctx context.Context) error {
			return unbanScript.Run(ctx, b.st.rdb, b.keys(ip), ip.String(), b.st.channel(), b.st.replica).Err()
		})
		if err != nil {
			return
		}
		b.mu.Lock()
		delete(b.unbanned, ip)
		b.mu.Unlock()
	}
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
