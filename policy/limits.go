package policy

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Errors returned by Admit and SetUser. The proxy answers each with 421 and
// closes the connection, before any TLS work when it comes from Admit.
var (
	ErrBanned          = errors.New("policy: client address is banned")
	ErrConnRate        = errors.New("policy: too many new connections from this address")
	ErrTooManyFromIP   = errors.New("policy: too many sessions from this address")
	ErrTooManySessions = errors.New("policy: too many sessions")
	ErrTooManyForUser  = errors.New("policy: too many sessions for this user")
	ErrTooManyPreLogin = errors.New("policy: too many sessions not yet logged in from this address")
	ErrInvalidAddr     = errors.New("policy: invalid client address")
)

// CommandLimiter returns a fresh limiter for one session's commands, or nil
// when CommandRate is off. The proxy calls Wait(ctx) on it before handling
// each command: a session over the rate is slowed, not closed.
func (a *Admission) CommandLimiter() *rate.Limiter {
	if a.limits.CommandRate <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(a.limits.CommandRate), burstFor(a.limits.CommandRate, a.limits.CommandBurst))
}

// normalize makes one key per client: IPv4-mapped IPv6 addresses become
// IPv4 and zones are dropped.
func normalize(ip netip.Addr) netip.Addr { return ip.Unmap().WithZone("") }

// allowed reports whether ip (normalized) is in one of the networks.
func allowed(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

const (
	admShards = 32 // a power of two
	// admSweepEvery is how often a shard is swept for idle entries, at most.
	admSweepEvery = time.Second
	// maxFill bounds the connection-rate timings.
	maxFill = 24 * time.Hour
)

// Admission decides who may open a session: the gate at accept. It keeps one
// entry per client IP that has a session or a rate bucket that is not full
// again; idle entries are evicted as the table is used (each shard is swept
// at most once a second, by the Admit that finds it due), so the table holds
// at most the addresses seen in the last ConnBurst/ConnRate seconds plus one
// second, plus those with live sessions.
//
// The connection rate is a token bucket of ConnBurst tokens refilled at
// ConnRate per second, kept as the GCRA's single "theoretical arrival time"
// per address: the same decisions as a golang.org/x/time/rate.Limiter per
// address, without its allocation, pointer and mutex (the per-IP table is a
// map of plain values that the garbage collector does not scan).
//
// Allowlisted addresses (Limits.Allow, and the Defender's BanConfig.Allow)
// are always admitted and never limited: no ban, no rate, no per-IP, per-user
// or total cap applies to them. Their sessions are still counted, in the
// per-IP and per-user counts and in the total, so that a partner working
// through a flood is not locked out while everyone else is refused once the
// total is reached.
//
// An Admission is safe for concurrent use.
type Admission struct {
	limits   Limits
	defender *Defender
	now      func() time.Time // for tests; time.Now when nil
	epoch    time.Time        // times in the table are nanoseconds since epoch (monotonic)
	seed     uint64
	interval int64 // nanoseconds between tokens; 0: no connection rate
	tau      int64 // how far ahead of now an address's arrival time may run: (burst-1) intervals

	shards [admShards]admShard
	total  atomic.Int64

	userMu sync.Mutex
	users  map[string]int
}

type admShard struct {
	mu        sync.Mutex
	ips       map[addrKey]ipEntry
	lastSweep int64
	_         [64]byte // keep shards on separate cache lines
}

// addrKey is a normalized address as 16 bytes: no pointer for the GC to scan.
type addrKey [16]byte

func (k addrKey) addr() netip.Addr { return netip.AddrFrom16(k).Unmap() }

type ipEntry struct {
	tat      int64 // GCRA theoretical arrival time; the bucket is full when tat <= now
	sessions int64
	preLogin int64 // of sessions, those not logged in yet
}

// idle reports whether e can be forgotten without changing any decision:
// no session and a rate bucket that is full again.
func (e ipEntry) idle(now int64) bool { return e.sessions == 0 && e.tat <= now }

// NewAdmission returns the gate for l. d may be nil: no bans are checked.
// l must have passed Validate.
func NewAdmission(l Limits, d *Defender) *Admission {
	a := &Admission{limits: l, defender: d, seed: rand.Uint64(), users: map[string]int{}}
	a.epoch = a.time()
	if l.ConnRate > 0 {
		interval := min(float64(time.Second)/l.ConnRate, float64(maxFill))
		a.interval = max(int64(math.Ceil(interval)), 1)
		a.tau = int64(min(float64(burstFor(l.ConnRate, l.ConnBurst)-1)*float64(a.interval), float64(maxFill)))
	}
	for i := range a.shards {
		a.shards[i].ips = map[addrKey]ipEntry{}
	}
	return a
}

func (a *Admission) time() time.Time {
	if a.now == nil {
		return time.Now()
	}
	return a.now()
}

// mono is the table's clock: nanoseconds since a.epoch, monotonic.
func (a *Admission) mono(t time.Time) int64 { return int64(t.Sub(a.epoch)) }

// fill is how long an unused rate bucket takes to fill up from empty.
func (a *Admission) fill() time.Duration { return time.Duration(a.tau + a.interval) }

func (a *Admission) shard(k addrKey) *admShard {
	h := binary.LittleEndian.Uint64(k[:8]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(k[8:]), 31) ^ a.seed
	h *= 0x9e3779b97f4a7c15
	return &a.shards[h>>(64-5)]
}

// Exempt reports whether ip is allowlisted: never limited nor banned.
func (a *Admission) Exempt(ip netip.Addr) bool { return a.exempt(ip) }

func (a *Admission) exempt(ip netip.Addr) bool {
	return allowed(a.limits.Allow, ip) || (a.defender != nil && allowed(a.defender.cfg.Allow, ip))
}

// Admit decides whether a new connection from ip may become a session. It
// checks, in order: the allowlist (admitted), a ban (ErrBanned), the
// connection rate of ip (ErrConnRate), the sessions of ip (ErrTooManyFromIP),
// those of its sessions not logged in yet (ErrTooManyPreLogin) and the
// sessions in total (ErrTooManySessions). The returned ticket holds the
// session's place, counted as not logged in until Login, until Release.
func (a *Admission) Admit(ip netip.Addr) (*Ticket, error) {
	ip = normalize(ip)
	if !ip.IsValid() {
		return nil, ErrInvalidAddr
	}
	t := a.time()
	exempt := a.exempt(ip)
	if !exempt && a.defender != nil {
		if _, banned := a.defender.bannedAt(ip, t); banned {
			return nil, ErrBanned
		}
	}
	now := a.mono(t)
	k := addrKey(ip.As16())
	sh := a.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.lastSweep >= int64(admSweepEvery) {
		a.sweep(sh, now)
	}
	e := sh.ips[k]
	refuse := func(err error) (*Ticket, error) {
		if e.idle(now) {
			delete(sh.ips, k)
		} else {
			sh.ips[k] = e
		}
		return nil, err
	}
	if a.interval > 0 && !exempt {
		tat := max(e.tat, now)
		if tat-now > a.tau {
			return refuse(ErrConnRate)
		}
		e.tat = tat + a.interval
	}
	if !exempt && a.limits.MaxSessionsPerIP > 0 && e.sessions >= int64(a.limits.MaxSessionsPerIP) {
		return refuse(ErrTooManyFromIP)
	}
	if !exempt && a.limits.MaxPreLoginPerIP > 0 && e.preLogin >= int64(a.limits.MaxPreLoginPerIP) {
		return refuse(ErrTooManyPreLogin)
	}
	for {
		cur := a.total.Load()
		if !exempt && a.limits.MaxSessions > 0 && cur >= int64(a.limits.MaxSessions) {
			return refuse(ErrTooManySessions)
		}
		if a.total.CompareAndSwap(cur, cur+1) {
			break
		}
	}
	e.sessions++
	e.preLogin++
	sh.ips[k] = e
	return &Ticket{a: a, ip: ip, exempt: exempt}, nil
}

// sweep forgets the idle entries of sh. sh.mu is held.
func (a *Admission) sweep(sh *admShard, now int64) {
	sh.lastSweep = now
	for k, e := range sh.ips {
		if e.idle(now) {
			delete(sh.ips, k)
		}
	}
}

// Sweep forgets every idle entry now. Admit does this by itself as it goes;
// Sweep is for tests and for a caller that wants the table tight.
func (a *Admission) Sweep() {
	now := a.mono(a.time())
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		a.sweep(sh, now)
		sh.mu.Unlock()
	}
}

// loggedIn moves a session of ip out of the pre-login count.
func (a *Admission) loggedIn(ip netip.Addr) {
	k := addrKey(ip.As16())
	sh := a.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.ips[k]; ok && e.preLogin > 0 {
		e.preLogin--
		sh.ips[k] = e
	}
}

// release gives back a session of ip, still counted as pre-login unless
// loggedIn. An entry left without sessions is deleted at once when there is
// no connection rate, else by a later sweep (once its bucket is full: no
// clock reading here).
func (a *Admission) release(ip netip.Addr, loggedIn bool) {
	a.total.Add(-1)
	k := addrKey(ip.As16())
	sh := a.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.ips[k]
	if !ok {
		return // cannot happen: an entry with sessions is never evicted
	}
	e.sessions--
	if !loggedIn && e.preLogin > 0 {
		e.preLogin--
	}
	if e.sessions == 0 && e.tat == 0 {
		delete(sh.ips, k)
	} else {
		sh.ips[k] = e
	}
}

// Ticket is one admitted session's place in the counts.
type Ticket struct {
	a      *Admission
	ip     netip.Addr
	exempt bool

	mu       sync.Mutex
	user     string
	hasUser  bool
	loggedIn bool // out of the pre-login count
	released bool
	hook     TicketHook // nil: counted here only
}

// IP returns the (normalized) client address the ticket was issued to.
func (t *Ticket) IP() netip.Addr { return t.ip }

// Login records a successful login of user: the session leaves the
// pre-login count of its address and is counted for user, releasing the
// place it held for a previous user. Call it only once the login succeeded:
// counting at USER, before the password, would let anyone who knows a user
// name lock that user out with sessions that never log in. Over
// MaxSessionsPerUser it returns ErrTooManyForUser, and the ticket then holds
// no user and stays pre-login (the session must end). It does nothing after
// Release.
func (t *Ticket) Login(user string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released || (t.hasUser && t.user == user) {
		return nil
	}
	a := t.a
	a.userMu.Lock()
	defer a.userMu.Unlock()
	if t.hasUser {
		a.dropUser(t.user)
		t.hasUser, t.user = false, ""
	}
	if !t.exempt && a.limits.MaxSessionsPerUser > 0 && a.users[user] >= a.limits.MaxSessionsPerUser {
		return ErrTooManyForUser
	}
	a.users[user]++
	t.hasUser, t.user = true, user
	if t.hook != nil {
		// Not under userMu: the hook may ask a shared store.
		a.userMu.Unlock()
		err := t.hook.Login(user)
		a.userMu.Lock()
		if err != nil {
			a.dropUser(user)
			t.hasUser, t.user = false, ""
			return err
		}
	}
	if !t.loggedIn {
		t.loggedIn = true
		a.loggedIn(t.ip)
	}
	return nil
}

// dropUser releases one session of user. a.userMu is held.
func (a *Admission) dropUser(user string) {
	if n := a.users[user]; n <= 1 {
		delete(a.users, user)
	} else {
		a.users[user] = n - 1
	}
}

// Release gives the session's place back. It may be called more than once.
func (t *Ticket) Release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.released {
		return
	}
	t.released = true
	if t.hook != nil {
		t.hook.Release()
	}
	if t.hasUser {
		t.a.userMu.Lock()
		t.a.dropUser(t.user)
		t.a.userMu.Unlock()
		t.hasUser, t.user = false, ""
	}
	t.a.release(t.ip, t.loggedIn)
}

// AdmissionStats is a snapshot of the admission tables.
type AdmissionStats struct {
	TrackedIPs int          `json:"tracked_ips"` // entries in the per-IP table
	Sessions   int          `json:"sessions"`    // admitted and not released
	Users      int          `json:"users"`       // distinct users with a session
	ByIP       []IPSessions `json:"by_ip"`       // addresses with sessions, most first
}

// IPSessions is the number of sessions of one client address.
type IPSessions struct {
	IP       netip.Addr `json:"ip"`
	Sessions int        `json:"sessions"`
	PreLogin int        `json:"prelogin"` // of Sessions, those not logged in yet
}

// Stats returns a snapshot of the tables (for the admin API).
func (a *Admission) Stats() AdmissionStats {
	st := AdmissionStats{Sessions: int(a.total.Load())}
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		st.TrackedIPs += len(sh.ips)
		for k, e := range sh.ips {
			if e.sessions > 0 {
				st.ByIP = append(st.ByIP, IPSessions{IP: k.addr(), Sessions: int(e.sessions), PreLogin: int(e.preLogin)})
			}
		}
		sh.mu.Unlock()
	}
	a.userMu.Lock()
	st.Users = len(a.users)
	a.userMu.Unlock()
	slices.SortFunc(st.ByIP, func(x, y IPSessions) int {
		if x.Sessions != y.Sessions {
			return y.Sessions - x.Sessions
		}
		return x.IP.Compare(y.IP)
	})
	return st
}

// UserSessions is how many live sessions are counted for the ticket's user
// (its own included); 0 before Login.
func (t *Ticket) UserSessions() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.hasUser {
		return 0
	}
	t.a.userMu.Lock()
	defer t.a.userMu.Unlock()
	return t.a.users[t.user]
}
