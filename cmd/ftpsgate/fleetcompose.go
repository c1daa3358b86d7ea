package main

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/policy"
)

// banStore is what the gateway, the admin API and the metrics need of the
// ban list: *policy.Defender and *fleet.Bans are ones.
type banStore interface {
	Record(ip netip.Addr, kind string) bool
	Subscribe(func(policy.BanEvent))
	Close() error
	List() []policy.Ban
	Ban(ip netip.Addr, d time.Duration, reason string) (policy.Ban, error)
	Unban(ip netip.Addr) bool
}

// shared builds the ban list and the admission gate: this gateway's own,
// or, with a fleet section, the fleet's in Redis (with the TOTP replay
// memory for the authenticator).
func (d *composed) shared(cfg *loaded, log zerolog.Logger) error {
	pc := cfg.proxy
	if cfg.shared == nil {
		def, err := policy.NewDefender(pc.Bans, nil)
		if err != nil {
			return fmt.Errorf("proxy: bans: %w", err)
		}
		d.bans, d.admission = def, policy.NewAdmission(pc.Limits, def)
		d.gate = d.admission
		return nil
	}
	if pc.Bans.StateFile != "" {
		log.Warn().Str("key", "bans.state_file").Msg("bans.state_file is not used with a fleet section: the bans live in Redis (its persistence keeps them)")
	}
	st, err := fleet.New(*cfg.shared, log, d.sink)
	if err != nil {
		return err
	}
	bans, err := fleet.NewBans(st, pc.Bans)
	if err != nil {
		_ = st.Close()
		return err
	}
	gate := fleet.NewAdmission(st, pc.Limits, bans)
	d.fleet, d.fleetBans, d.bans, d.gate, d.admission = st, bans, bans, gate, gate.Local()
	if cfg.auth != nil {
		cfg.auth.replay = fleet.NewReplay(st)
		lockout := cfg.auth.lockout
		cfg.auth.shareLockout = func(local auth.Throttle) auth.Throttle { return fleet.NewLockout(st, lockout, local) }
	}
	return nil
}

// closeFleet closes the fleet's store, when there is one: after the
// gateway's shutdown (the last sessions give their places back).
func (d *composed) closeFleet() {
	if d.fleet != nil {
		_ = d.fleet.Close()
	}
}

// bansActive is the ban gauge: the fleet's cache (no Redis call per
// scrape), or this gateway's list.
func (d *composed) bansActive() int {
	if d.fleetBans != nil {
		return d.fleetBans.CacheSize()
	}
	return len(d.bans.List())
}
