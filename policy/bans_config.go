package policy

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of BanConfig.
const (
	DefaultMaxFailures = 5
	DefaultBanWindow   = 5 * time.Minute
	DefaultBanDuration = 15 * time.Minute
	DefaultBanMax      = 24 * time.Hour

	maxMaxFailures = 1000 // bounds the per-address failure log
)

// BanConfig configures automatic bans (the bans section). The zero value
// bans after 5 failed logins within 5 minutes, for 15 minutes, doubling for
// each repeat offence up to 24 hours, and keeps no state file.
type BanConfig struct {
	// MaxFailures is the weight of events within Window that bans an
	// address. Zero: 5.
	MaxFailures int
	// Window is how long an event counts. Zero: 5m.
	Window time.Duration
	// Duration is the first ban of an address. Zero: 15m.
	Duration time.Duration
	// MaxDuration caps bans: each repeat offence doubles the previous ban up
	// to it. An address whose last ban ended more than MaxDuration ago is a
	// first offender again. Zero: 24h.
	MaxDuration time.Duration
	// Weights is what each kind of event (KindLoginFailed, KindProtocol,
	// KindTLSHandshake) adds; a kind that is absent weighs 1, and 0 disables
	// it. Nil: all weigh 1.
	Weights map[string]int
	// StateFile keeps the bans and the repeat-offence counts across
	// restarts. Empty: bans live in memory only.
	StateFile string
	// Allow lists networks that are never banned.
	Allow []netip.Prefix
	// KeepSessions leaves the running sessions of a newly banned address
	// alone: the ban only refuses new connections. False (the default,
	// bans.end_sessions: true): a ban ends them too, with 421.
	KeepSessions bool
}

func (c BanConfig) maxFailures() int { return cmp0(c.MaxFailures, DefaultMaxFailures) }
func (c BanConfig) window() time.Duration {
	return cmp0(c.Window, DefaultBanWindow)
}
func (c BanConfig) duration() time.Duration { return cmp0(c.Duration, DefaultBanDuration) }
func (c BanConfig) maxDuration() time.Duration {
	return cmp0(c.MaxDuration, DefaultBanMax)
}

func cmp0[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// weight is what one event of kind adds; unknown kinds add nothing.
func (c BanConfig) weight(kind string) int {
	switch kind {
	case KindLoginFailed, KindProtocol, KindTLSHandshake, KindPathEscape:
	default:
		return 0
	}
	if w, ok := c.Weights[kind]; ok {
		return w
	}
	return 1
}

// Validate checks the configuration. Each problem is a *confkey.Error
// whose key is relative to the bans section ("weights.protocol"), several
// joined with errors.Join.
func (c BanConfig) Validate() error {
	var errs []error
	if c.MaxFailures < 0 || c.MaxFailures > maxMaxFailures {
		errs = append(errs, confkey.Errorf("max_failures", "must be between 1 and %d", maxMaxFailures))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"window", c.Window}, {"duration", c.Duration}, {"max_duration", c.MaxDuration}} {
		if d.v < 0 {
			errs = append(errs, confkey.Errorf(d.key, "must not be negative"))
		}
	}
	if c.maxDuration() < c.duration() {
		errs = append(errs, confkey.Errorf("max_duration", "%s is shorter than duration %s", c.maxDuration(), c.duration()))
	}
	kinds := make([]string, 0, len(c.Weights))
	for k := range c.Weights {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		switch {
		case c.weight(k) == 0 && c.Weights[k] != 0:
			errs = append(errs, confkey.Errorf("weights", "%q is not an event kind (want %s, %s, %s or %s)", k, KindLoginFailed, KindProtocol, KindTLSHandshake, KindPathEscape))
		case c.Weights[k] < 0:
			errs = append(errs, confkey.Errorf("weights."+k, "must not be negative"))
		case c.Weights[k] > c.maxFailures():
			errs = append(errs, confkey.Errorf("weights."+k, "%d is more than max_failures %d", c.Weights[k], c.maxFailures()))
		}
	}
	if c.StateFile != "" {
		dir := filepath.Dir(c.StateFile)
		if fi, err := os.Stat(dir); err != nil {
			errs = append(errs, confkey.New("state_file", err))
		} else if !fi.IsDir() {
			errs = append(errs, confkey.Errorf("state_file", "%s is not a directory", dir))
		} else if fi, err := os.Stat(c.StateFile); err == nil && !fi.Mode().IsRegular() {
			errs = append(errs, confkey.Errorf("state_file", "%s is not a regular file", c.StateFile))
		}
	}
	errs = append(errs, checkPrefixes("allow", c.Allow)...)
	return errors.Join(errs...)
}
