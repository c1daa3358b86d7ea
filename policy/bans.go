package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The kinds of abuse a Defender counts (keys of BanConfig.Weights).
const (
	KindLoginFailed  = "login_failed"  // 530 after PASS
	KindProtocol     = "protocol"      // a garbage command line
	KindTLSHandshake = "tls_handshake" // a failed TLS handshake on an implicit listener
	KindPathEscape   = "path_escape"   // a confined session named a path above its virtual root
)

// The kinds of BanEvent.
const (
	EventBan   = "ban"
	EventUnban = "unban"
)

// Errors returned by Defender.Ban.
var (
	ErrAllowlisted = errors.New("policy: address is allowlisted and cannot be banned")
	ErrBadDuration = errors.New("policy: ban duration must not be negative")
	ErrBansOff     = errors.New("policy: bans are not configured")
)

// Ban is one address's ban.
type Ban struct {
	IP       netip.Addr `json:"ip"`
	Since    time.Time  `json:"since"`
	Until    time.Time  `json:"until"`
	Reason   string     `json:"reason"`
	Offences int        `json:"offences"` // automatic bans of this address so far (0: only manual)
}

// BanEvent reports a ban or an unban, for the log.
type BanEvent struct {
	Kind     string        // EventBan or EventUnban
	IP       netip.Addr    //
	Until    time.Time     // ban: when it ends; unban: when it would have ended
	Duration time.Duration // ban: how long it lasts
	Reason   string        // why: "5 failures within 5m0s (login_failed)", "admin", "expired", ...
	Offences int           // automatic bans of this address so far
}

// Covers reports whether the ban of e applies to a client at ip (bans
// are keyed by the unmapped address without its zone).
func (e BanEvent) Covers(ip netip.Addr) bool {
	return e.Kind == EventBan && ip.IsValid() && normalize(ip) == e.IP
}

// Defender counts abuse per client address and bans addresses that reach
// BanConfig.MaxFailures within the window. It is safe for concurrent use.
// Every per-address table forgets idle entries: failure logs when their last
// event leaves the window, bans when they end, repeat-offence counts
// MaxDuration after the last ban ended.
//
// The methods of a nil *Defender are valid: nothing is ever banned.
type Defender struct {
	cfg     BanConfig
	onEvent func(BanEvent)
	subs    []func(BanEvent) // Subscribe's
	now     func() time.Time // for tests; time.Now when nil
	epoch   time.Time        // failure times are nanoseconds since epoch (monotonic: immune to clock steps)

	nbans     atomic.Int64 // len(bans), for a lock-free "no bans" answer
	nextSweep atomic.Int64 // d.mono time

	mu       sync.RWMutex
	bans     map[netip.Addr]*Ban
	past     map[netip.Addr]pastOffender
	failures map[netip.Addr][]failure
	gen      uint64 // incremented by each change worth saving

	persist persister
}

type failure struct {
	at     int64 // d.mono time
	weight int
}

// pastOffender remembers an address whose last automatic ban ended, so that
// its next ban is longer.
type pastOffender struct {
	offences int
	until    time.Time // when the last ban ended
}

// NewDefender returns a Defender for cfg, which must have passed Validate.
// It loads cfg.StateFile when it exists; bans that ended meanwhile are
// dropped. onEvent (may be nil) is called for every ban and unban,
// synchronously and without locks held: it may call the Defender, and must
// not block for long.
func NewDefender(cfg BanConfig, onEvent func(BanEvent)) (*Defender, error) {
	return newDefender(cfg, onEvent, nil)
}

func newDefender(cfg BanConfig, onEvent func(BanEvent), now func() time.Time) (*Defender, error) {
	d := &Defender{
		cfg:      cfg,
		onEvent:  onEvent,
		now:      now,
		bans:     map[netip.Addr]*Ban{},
		past:     map[netip.Addr]pastOffender{},
		failures: map[netip.Addr][]failure{},
	}
	d.persist.d = d
	d.epoch = d.time()
	if cfg.StateFile != "" {
		if err := d.load(); err != nil {
			return nil, fmt.Errorf("policy: bans state_file %s: %w", cfg.StateFile, err)
		}
	}
	d.nbans.Store(int64(len(d.bans)))
	return d, nil
}

func (d *Defender) time() time.Time {
	if d.now == nil {
		return time.Now()
	}
	return d.now()
}

func (d *Defender) mono(t time.Time) int64 { return int64(t.Sub(d.epoch)) }

func (d *Defender) allowed(ip netip.Addr) bool { return allowed(d.cfg.Allow, ip) }

// Banned reports whether ip is banned now, and until when. It is the hot
// path: cheap, and lock-free while there are no bans. A ban found expired is
// lifted (and an unban event fired).
func (d *Defender) Banned(ip netip.Addr) (until time.Time, ok bool) {
	if d == nil {
		return time.Time{}, false
	}
	return d.bannedAt(normalize(ip), d.time())
}

// bannedAt is Banned for a normalized ip at now.
func (d *Defender) bannedAt(ip netip.Addr, now time.Time) (time.Time, bool) {
	d.maybeSweep(now)
	if d.nbans.Load() == 0 {
		return time.Time{}, false
	}
	d.mu.RLock()
	b := d.bans[ip]
	var until time.Time
	if b != nil {
		until = b.Until
	}
	d.mu.RUnlock()
	if b == nil {
		return time.Time{}, false
	}
	if now.Before(until) {
		return until, true
	}
	d.expire(ip, now)
	return time.Time{}, false
}

// expire lifts the ban of ip if it has ended by now.
func (d *Defender) expire(ip netip.Addr, now time.Time) {
	d.mu.Lock()
	b := d.bans[ip]
	if b == nil || now.Before(b.Until) {
		d.mu.Unlock()
		return
	}
	d.endBan(ip, b)
	d.mu.Unlock()
	// No save: an ended ban is dropped at load anyway.
	d.emit(BanEvent{Kind: EventUnban, IP: ip, Until: b.Until, Reason: "expired", Offences: b.Offences})
}

// endBan removes an ended ban, keeping its offence count. d.mu is held.
func (d *Defender) endBan(ip netip.Addr, b *Ban) {
	delete(d.bans, ip)
	d.nbans.Store(int64(len(d.bans)))
	if b.Offences > 0 {
		d.past[ip] = pastOffender{offences: b.Offences, until: b.Until}
	}
	d.gen++
}

// maybeSweep sweeps when a sweep is due; of callers that find it due at
// once, one sweeps.
func (d *Defender) maybeSweep(now time.Time) {
	next := d.nextSweep.Load()
	if d.mono(now) >= next && d.nextSweep.CompareAndSwap(next, d.mono(now.Add(d.sweepEvery()))) {
		d.sweep(now)
	}
}

// sweep forgets what has gone idle by now.
func (d *Defender) sweep(now time.Time) {
	var ended []BanEvent
	d.mu.Lock()
	cutoff := d.mono(now.Add(-d.cfg.window()))
	for ip, fs := range d.failures {
		if fs[len(fs)-1].at <= cutoff {
			delete(d.failures, ip)
		}
	}
	for ip, b := range d.bans {
		if !now.Before(b.Until) {
			d.endBan(ip, b)
			ended = append(ended, BanEvent{Kind: EventUnban, IP: ip, Until: b.Until, Reason: "expired", Offences: b.Offences})
		}
	}
	for ip, p := range d.past {
		if now.Sub(p.until) > d.cfg.maxDuration() {
			delete(d.past, ip)
			d.gen++
		}
	}
	d.mu.Unlock()
	for _, ev := range ended {
		d.emit(ev)
	}
}

// sweepEvery is how often the tables are swept: often enough that failure
// logs live at most about two windows.
func (d *Defender) sweepEvery() time.Duration { return max(d.cfg.window()/2, time.Second) }

func (d *Defender) emit(ev BanEvent) {
	if d.onEvent != nil {
		d.onEvent(ev)
	}
	for _, f := range d.subs {
		f(ev)
	}
}

// Subscribe adds f to the functions called for every ban and unban, like
// NewDefender's onEvent. It must be called before the Defender is used
// (the gateway subscribes when it is built).
func (d *Defender) Subscribe(f func(BanEvent)) {
	if d != nil {
		d.subs = append(d.subs, f)
	}
}

// Record counts one event of kind (KindLoginFailed, KindProtocol,
// KindTLSHandshake, KindPathEscape) from ip and bans ip when the weight of its events within
// the window reaches MaxFailures. It reports whether ip is banned (now or
// already): the proxy then ends the session with 421. Allowlisted addresses,
// unknown kinds and kinds of weight 0 are not counted.
func (d *Defender) Record(ip netip.Addr, kind string) (banned bool) {
	if d == nil {
		return false
	}
	ip = normalize(ip)
	w := d.cfg.weight(kind)
	if w == 0 || !ip.IsValid() || d.allowed(ip) {
		return false
	}
	now := d.time()
	d.maybeSweep(now)
	d.mu.Lock()
	if b := d.bans[ip]; b != nil && now.Before(b.Until) {
		d.mu.Unlock()
		return true
	}
	cutoff := d.mono(now.Add(-d.cfg.window()))
	fs := d.failures[ip]
	i := 0
	for i < len(fs) && fs[i].at <= cutoff {
		i++
	}
	fs = append(fs[i:], failure{at: d.mono(now), weight: w})
	sum := 0
	for _, f := range fs {
		sum += f.weight
	}
	if sum < d.cfg.maxFailures() {
		d.failures[ip] = fs
		d.mu.Unlock()
		return false
	}
	delete(d.failures, ip)
	offences := 1
	if p, ok := d.past[ip]; ok {
		offences = p.offences + 1
		delete(d.past, ip)
	}
	dur := d.escalate(offences)
	reason := fmt.Sprintf("%d failures within %s (%s)", sum, d.cfg.window(), kind)
	if offences > 1 {
		reason += fmt.Sprintf(", offence %d", offences)
	}
	b := &Ban{IP: ip, Since: now, Until: now.Add(dur), Reason: reason, Offences: offences}
	d.bans[ip] = b
	d.nbans.Store(int64(len(d.bans)))
	d.gen++
	d.mu.Unlock()
	d.emit(BanEvent{Kind: EventBan, IP: ip, Until: b.Until, Duration: dur, Reason: reason, Offences: offences})
	d.persist.request()
	return true
}

// escalate is the length of the offences-th automatic ban: Duration,
// doubled for each repeat, capped at MaxDuration.
func (d *Defender) escalate(offences int) time.Duration {
	dur, limit := d.cfg.duration(), d.cfg.maxDuration()
	for i := 1; i < offences && dur < limit; i++ {
		dur *= 2
	}
	return min(dur, limit)
}

// Ban bans ip for dur (zero: BanConfig.Duration) from now, replacing any
// ban it has; reason is recorded. It does not change the repeat-offence
// count. It returns ErrAllowlisted for an allowlisted address.
func (d *Defender) Ban(ip netip.Addr, dur time.Duration, reason string) (Ban, error) {
	ip = normalize(ip)
	switch {
	case d == nil:
		return Ban{}, ErrBansOff
	case !ip.IsValid():
		return Ban{}, ErrInvalidAddr
	case dur < 0:
		return Ban{}, ErrBadDuration
	case d.allowed(ip):
		return Ban{}, ErrAllowlisted
	}
	if dur == 0 {
		dur = d.cfg.duration()
	}
	now := d.time()
	d.mu.Lock()
	offences := 0
	if old := d.bans[ip]; old != nil {
		offences = old.Offences
	} else if p, ok := d.past[ip]; ok {
		offences = p.offences
	}
	b := &Ban{IP: ip, Since: now, Until: now.Add(dur), Reason: reason, Offences: offences}
	d.bans[ip] = b
	delete(d.failures, ip)
	d.nbans.Store(int64(len(d.bans)))
	d.gen++
	d.mu.Unlock()
	d.emit(BanEvent{Kind: EventBan, IP: ip, Until: b.Until, Duration: dur, Reason: reason, Offences: offences})
	d.persist.request()
	return *b, nil
}

// Unban lifts the ban of ip and forgets its failures and its repeat
// offences: an operator's unban is a pardon. It reports whether ip was
// banned.
func (d *Defender) Unban(ip netip.Addr) bool {
	if d == nil {
		return false
	}
	ip = normalize(ip)
	now := d.time()
	d.mu.Lock()
	b := d.bans[ip]
	delete(d.failures, ip)
	delete(d.past, ip)
	if b == nil {
		d.mu.Unlock()
		return false
	}
	delete(d.bans, ip)
	d.nbans.Store(int64(len(d.bans)))
	d.gen++
	d.mu.Unlock()
	if !now.Before(b.Until) {
		d.emit(BanEvent{Kind: EventUnban, IP: ip, Until: b.Until, Reason: "expired", Offences: b.Offences})
		return false
	}
	d.emit(BanEvent{Kind: EventUnban, IP: ip, Until: b.Until, Reason: "removed", Offences: b.Offences})
	d.persist.request()
	return true
}

// List returns the bans in force, sorted by address.
func (d *Defender) List() []Ban {
	if d == nil {
		return nil
	}
	now := d.time()
	d.nextSweep.Store(d.mono(now.Add(d.sweepEvery())))
	d.sweep(now)
	d.mu.RLock()
	out := make([]Ban, 0, len(d.bans))
	for _, b := range d.bans {
		out = append(out, *b)
	}
	d.mu.RUnlock()
	slices.SortFunc(out, func(x, y Ban) int { return x.IP.Compare(y.IP) })
	return out
}

// DefenderStats is a snapshot of the Defender's tables.
type DefenderStats struct {
	Bans      int `json:"bans"`      // bans in force (or ended and not yet noticed)
	Tracked   int `json:"tracked"`   // addresses with failures in the window
	Offenders int `json:"offenders"` // past offenders remembered for escalation
}

// Stats returns the sizes of the tables.
func (d *Defender) Stats() DefenderStats {
	if d == nil {
		return DefenderStats{}
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return DefenderStats{Bans: len(d.bans), Tracked: len(d.failures), Offenders: len(d.past)}
}

// Close saves the state file (when configured) and stops the pending save.
// Changes after Close are not saved unless Save is called.
func (d *Defender) Close() error {
	if d == nil {
		return nil
	}
	d.persist.close()
	return d.Save()
}

// String is for logs.
func (e BanEvent) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", e.Kind, e.IP)
	if e.Kind == EventBan {
		fmt.Fprintf(&sb, " for %s", e.Duration)
	}
	fmt.Fprintf(&sb, ": %s", e.Reason)
	return sb.String()
}
