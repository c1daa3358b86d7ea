package policy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Limits are the connection, command and bandwidth limits (the limits
// section). The zero value limits nothing.
type Limits struct {
	// ConnRate is the number of new connections per second one client IP
	// may open, with ConnBurst of them at once. Zero: off. ConnBurst zero:
	// ConnRate rounded up, at least 1.
	ConnRate  float64
	ConnBurst int
	// MaxSessionsPerIP, MaxSessionsPerUser and MaxSessions cap concurrent
	// sessions per client IP, per user (counted at a successful login) and
	// in total. Zero: unlimited.
	MaxSessionsPerIP, MaxSessionsPerUser, MaxSessions int
	// MaxPreLoginPerIP caps the sessions of one client IP that have not
	// logged in yet (scanners, password guessers, connections held open to
	// hoard slots). Zero: unlimited.
	MaxPreLoginPerIP int
	// CommandRate is the number of commands per second one session may
	// send, with CommandBurst at once; a faster session is slowed, not
	// closed. Zero: off. CommandBurst zero: CommandRate rounded up, at least 1.
	CommandRate  float64
	CommandBurst int
	// MaxPassivePerIP caps the passive ports one client IP holds at once
	// (each session holds at most one, from PASV/EPSV until its transfer
	// ends), so that one client cannot lease the whole range. Zero:
	// unlimited.
	MaxPassivePerIP int
	// SessionBandwidth and TotalBandwidth cap the data relay, in bytes per
	// second, per session and for the whole gateway. Zero: unlimited.
	SessionBandwidth, TotalBandwidth int64
	// Allow lists client networks that are never limited nor banned.
	Allow []netip.Prefix
}

// maxRate bounds rates so that durations computed from them stay finite.
const maxRate = 1e9

// Validate checks the limits. Each problem is a *confkey.Error whose key is
// relative to the limits section ("conn_burst"), several joined with
// errors.Join.
func (l Limits) Validate() error {
	var errs []error
	checkRate := func(key string, r float64) {
		switch {
		case math.IsNaN(r) || math.IsInf(r, 0):
			errs = append(errs, confkey.Errorf(key, "must be a finite number"))
		case r < 0:
			errs = append(errs, confkey.Errorf(key, "must not be negative"))
		case r > maxRate:
			errs = append(errs, confkey.Errorf(key, "must not exceed %g", float64(maxRate)))
		}
	}
	checkInt := func(key string, v int64) {
		if v < 0 {
			errs = append(errs, confkey.Errorf(key, "must not be negative"))
		}
	}
	checkRate("conn_rate", l.ConnRate)
	checkInt("conn_burst", int64(l.ConnBurst))
	checkInt("max_sessions_per_ip", int64(l.MaxSessionsPerIP))
	checkInt("max_sessions_per_user", int64(l.MaxSessionsPerUser))
	checkInt("max_sessions", int64(l.MaxSessions))
	checkInt("max_prelogin_per_ip", int64(l.MaxPreLoginPerIP))
	checkInt("max_passive_per_ip", int64(l.MaxPassivePerIP))
	checkRate("command_rate", l.CommandRate)
	checkInt("command_burst", int64(l.CommandBurst))
	checkInt("session_bandwidth", l.SessionBandwidth)
	checkInt("total_bandwidth", l.TotalBandwidth)
	if l.ConnBurst > 0 && l.ConnRate == 0 {
		errs = append(errs, confkey.Errorf("conn_burst", "needs conn_rate"))
	}
	if l.CommandBurst > 0 && l.CommandRate == 0 {
		errs = append(errs, confkey.Errorf("command_burst", "needs command_rate"))
	}
	errs = append(errs, checkPrefixes("allow", l.Allow)...)
	return errors.Join(errs...)
}

func checkPrefixes(key string, ps []netip.Prefix) []error {
	var errs []error
	for i, p := range ps {
		if !p.IsValid() {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("%s[%d]", key, i), "invalid network"))
		}
	}
	return errs
}

// burstFor is the burst of a token bucket: b, or r rounded up (at least 1).
func burstFor(r float64, b int) int {
	if b > 0 {
		return b
	}
	return max(1, int(math.Ceil(r)))
}
