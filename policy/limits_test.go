package policy

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock for the limit and ban tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestAdmission(l Limits, d *Defender, clk *fakeClock) *Admission {
	a := NewAdmission(l, d)
	a.now, a.epoch = clk.Now, clk.Now()
	return a
}

// nthIP returns a distinct address for each i.
func nthIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestLimitsValidate(t *testing.T) {
	if err := (Limits{}).Validate(); err != nil {
		t.Fatalf("zero Limits: %v", err)
	}
	ok := Limits{ConnRate: 2, ConnBurst: 5, MaxSessionsPerIP: 4, MaxSessionsPerUser: 3, MaxSessions: 100,
		CommandRate: 10, SessionBandwidth: 1 << 20, TotalBandwidth: 10 << 20,
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid Limits: %v", err)
	}
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{ConnRate: -1}, "conn_rate: must not be negative"},
		{Limits{ConnRate: math.NaN()}, "conn_rate: must be a finite number"},
		{Limits{ConnRate: math.Inf(1)}, "conn_rate: must be a finite number"},
		{Limits{ConnRate: 2e9}, "conn_rate: must not exceed"},
		{Limits{ConnRate: 1, ConnBurst: -1}, "conn_burst: must not be negative"},
		{Limits{ConnBurst: 3}, "conn_burst: needs conn_rate"},
		{Limits{MaxSessionsPerIP: -1}, "max_sessions_per_ip: must not be negative"},
		{Limits{MaxSessionsPerUser: -1}, "max_sessions_per_user: must not be negative"},
		{Limits{MaxSessions: -1}, "max_sessions: must not be negative"},
		{Limits{MaxPassivePerIP: -1}, "max_passive_per_ip: must not be negative"},
		{Limits{CommandRate: -0.5}, "command_rate: must not be negative"},
		{Limits{CommandBurst: 2}, "command_burst: needs command_rate"},
		{Limits{SessionBandwidth: -1}, "session_bandwidth: must not be negative"},
		{Limits{TotalBandwidth: -1}, "total_bandwidth: must not be negative"},
		{Limits{Allow: []netip.Prefix{{}}}, "allow[0]: invalid network"},
	} {
		err := tc.l.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.l, err, tc.want)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.Contains(line, ": ") || strings.HasPrefix(line, "policy") {
				t.Errorf("line %q does not start with a key", line)
			}
		}
	}
}

func TestAdmitOrderAndErrors(t *testing.T) {
	clk := newFakeClock()
	d := newTestDefender(t, BanConfig{}, clk, nil)
	banned := netip.MustParseAddr("198.51.100.7")
	if _, err := d.Ban(banned, time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	a := newTestAdmission(Limits{ConnRate: 1, ConnBurst: 3, MaxSessionsPerIP: 2, MaxSessions: 3}, d, clk)
	ip1 := netip.MustParseAddr("192.0.2.1")
	ip2 := netip.MustParseAddr("192.0.2.2")

	steps := []struct {
		ip   netip.Addr
		want error
	}{
		{banned, ErrBanned},
		{ip1, nil},
		{ip1, nil},
		{ip1, ErrTooManyFromIP}, // third token, but two sessions already
		{ip1, ErrConnRate},      // bucket empty
		{ip2, nil},
		{netip.MustParseAddr("192.0.2.3"), ErrTooManySessions},
	}
	var tickets []*Ticket
	for i, s := range steps {
		tk, err := a.Admit(s.ip)
		if !errors.Is(err, s.want) {
			t.Fatalf("step %d: Admit(%s) = %v, want %v", i, s.ip, err, s.want)
		}
		if err == nil {
			tickets = append(tickets, tk)
		} else if tk != nil {
			t.Fatalf("step %d: ticket with error", i)
		}
	}
	if st := a.Stats(); st.Sessions != 3 || len(st.ByIP) != 2 || st.ByIP[0] != (IPSessions{IP: ip1, Sessions: 2, PreLogin: 2}) {
		t.Fatalf("Stats = %+v", st)
	}
	// Releasing frees the place; twice is harmless.
	tickets[0].Release()
	tickets[0].Release()
	if st := a.Stats(); st.Sessions != 2 {
		t.Fatalf("after double Release: %d sessions", st.Sessions)
	}
	clk.Advance(time.Second) // one token back
	tk, err := a.Admit(ip1)
	if err != nil {
		t.Fatalf("after release and a second: %v", err)
	}
	tickets = append(tickets, tk)
	for _, tk := range tickets {
		tk.Release()
	}
	if st := a.Stats(); st.Sessions != 0 || len(st.ByIP) != 0 {
		t.Fatalf("after all released: %+v", st)
	}
	if _, err := a.Admit(netip.Addr{}); !errors.Is(err, ErrInvalidAddr) {
		t.Fatalf("zero address: %v", err)
	}
}

func TestAdmitMappedAndZonedAreOneClient(t *testing.T) {
	a := newTestAdmission(Limits{MaxSessionsPerIP: 1}, nil, newFakeClock())
	t1, err := a.Admit(netip.MustParseAddr("192.0.2.9"))
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Release()
	if _, err := a.Admit(netip.MustParseAddr("::ffff:192.0.2.9")); !errors.Is(err, ErrTooManyFromIP) {
		t.Fatalf("mapped address counted apart: %v", err)
	}
	t2, err := a.Admit(netip.MustParseAddr("fe80::1%eth0"))
	if err != nil {
		t.Fatal(err)
	}
	defer t2.Release()
	if _, err := a.Admit(netip.MustParseAddr("fe80::1%eth1")); !errors.Is(err, ErrTooManyFromIP) {
		t.Fatalf("zones counted apart: %v", err)
	}
}

func TestAllowlistIsNeverLimitedButCounted(t *testing.T) {
	clk := newFakeClock()
	partner := netip.MustParseAddr("203.0.113.5")
	d := newTestDefender(t, BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}, clk, nil)
	a := newTestAdmission(Limits{ConnRate: 1, ConnBurst: 1, MaxSessionsPerIP: 1, MaxSessionsPerUser: 1, MaxSessions: 2,
		Allow: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}, d, clk)
	for _, ip := range []netip.Addr{partner, netip.MustParseAddr("2001:db8::1")} {
		if d.Record(ip, KindLoginFailed) {
			t.Fatalf("%s banned", ip)
		}
		for i := range 5 {
			tk, err := a.Admit(ip)
			if err != nil {
				t.Fatalf("%s admission %d: %v", ip, i, err)
			}
			if err := tk.Login("partner"); err != nil {
				t.Fatalf("%s Login %d: %v", ip, i, err)
			}
			defer tk.Release()
		}
	}
	// Ten allowlisted sessions fill the total: others are refused.
	if _, err := a.Admit(netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("other client: %v", err)
	}
	if st := a.Stats(); st.Sessions != 10 || st.Users != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestLogin(t *testing.T) {
	a := newTestAdmission(Limits{MaxSessionsPerUser: 2}, nil, newFakeClock())
	admit := func(i int) *Ticket {
		t.Helper()
		tk, err := a.Admit(nthIP(i))
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	t1, t2, t3 := admit(1), admit(2), admit(3)
	for _, step := range []struct {
		tk   *Ticket
		user string
		want error
	}{
		{t1, "alice", nil},
		{t1, "alice", nil}, // same user again: no second count
		{t2, "alice", nil},
		{t3, "alice", ErrTooManyForUser},
		{t3, "bob", nil},
		{t2, "bob", nil},   // t2 leaves alice
		{t3, "alice", nil}, // room again
		{t1, "carol", nil},
	} {
		if err := step.tk.Login(step.user); !errors.Is(err, step.want) {
			t.Fatalf("Login(%q) = %v, want %v", step.user, err, step.want)
		}
	}
	if got := a.users; len(got) != 3 || got["alice"] != 1 || got["bob"] != 1 || got["carol"] != 1 {
		t.Fatalf("users = %v", got)
	}
	t1.Release()
	if err := t1.Login("dave"); err != nil {
		t.Fatal(err)
	}
	t2.Release()
	t3.Release()
	if len(a.users) != 0 {
		t.Fatalf("users after release = %v", a.users)
	}
}

func TestCommandLimiter(t *testing.T) {
	if l := NewAdmission(Limits{}, nil).CommandLimiter(); l != nil {
		t.Fatal("limiter with command_rate off")
	}
	l := NewAdmission(Limits{CommandRate: 2.5}, nil).CommandLimiter()
	if l == nil || l.Burst() != 3 || float64(l.Limit()) != 2.5 {
		t.Fatalf("limiter = %v", l)
	}
	l = NewAdmission(Limits{CommandRate: 0.1, CommandBurst: 7}, nil).CommandLimiter()
	if l.Burst() != 7 {
		t.Fatalf("burst = %d", l.Burst())
	}
}

// TestAdmissionMemoryBounded floods the table with 100,000 distinct
// addresses, one every half millisecond (2,000/s), each refused or released
// at once: the table never holds much more than the addresses of the last
// fill time (burst/rate) plus the sweep period, and shrinks to nothing once
// they are idle.
func TestAdmissionMemoryBounded(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    Limits
	}{
		{"rate", Limits{ConnRate: 1, ConnBurst: 5, MaxSessionsPerIP: 2}},
		{"no rate", Limits{MaxSessionsPerIP: 2, MaxSessions: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			a := newTestAdmission(tc.l, nil, clk)
			const n, step = 100_000, 500 * time.Microsecond
			window := a.fill() + admSweepEvery
			bound := int(window/step)*11/10 + 100
			peak := 0
			for i := range n {
				tk, err := a.Admit(nthIP(i))
				if err != nil {
					t.Fatalf("Admit %d: %v", i, err)
				}
				tk.Release()
				clk.Advance(step)
				if i%1000 == 0 {
					peak = max(peak, a.Stats().TrackedIPs)
				}
			}
			if peak > bound {
				t.Fatalf("peak %d tracked addresses, want <= %d", peak, bound)
			}
			clk.Advance(a.fill() + admSweepEvery)
			a.Sweep()
			if got := a.Stats().TrackedIPs; got != 0 {
				t.Fatalf("%d addresses tracked after all went idle", got)
			}
			t.Logf("peak %d tracked (bound %d)", peak, bound)
		})
	}
}

// TestAdmissionLazySweep checks that Admit alone (no Sweep) evicts.
func TestAdmissionLazySweep(t *testing.T) {
	clk := newFakeClock()
	a := newTestAdmission(Limits{ConnRate: 10, ConnBurst: 10}, nil, clk)
	for i := range 100_000 {
		tk, _ := a.Admit(nthIP(i))
		tk.Release()
	}
	if got := a.Stats().TrackedIPs; got != 100_000 {
		t.Fatalf("tracked %d", got)
	}
	clk.Advance(2 * time.Second)
	for i := range 2000 { // touches every shard
		tk, _ := a.Admit(nthIP(1_000_000 + i))
		tk.Release()
	}
	if got := a.Stats().TrackedIPs; got > 2000 {
		t.Fatalf("tracked %d after the flood went idle", got)
	}
}

func TestAdmissionConcurrent(t *testing.T) {
	a := NewAdmission(Limits{MaxSessionsPerIP: 3, MaxSessions: 50, MaxSessionsPerUser: 5}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				tk, err := a.Admit(nthIP(i % 40))
				if err != nil {
					continue
				}
				_ = tk.Login(fmt.Sprint("u", (i+g)%7))
				mu.Lock()
				peak = max(peak, int(a.total.Load()))
				mu.Unlock()
				tk.Release()
				tk.Release()
			}
		}()
	}
	wg.Wait()
	if peak > 50 {
		t.Fatalf("total reached %d, cap 50", peak)
	}
	if st := a.Stats(); st.Sessions != 0 || st.TrackedIPs != 0 || st.Users != 0 {
		t.Fatalf("after all released: %+v", st)
	}
}

// TestPreLoginCap: sessions that have not logged in are capped per address;
// a login frees a pre-login place, and so does the release of a session that
// never logged in. Other addresses are not affected.
func TestPreLoginCap(t *testing.T) {
	a := newTestAdmission(Limits{MaxPreLoginPerIP: 2, MaxSessionsPerIP: 4}, nil, newFakeClock())
	ip, other := nthIP(1), nthIP(2)
	admit := func(ip netip.Addr, want error) *Ticket {
		t.Helper()
		tk, err := a.Admit(ip)
		if !errors.Is(err, want) {
			t.Fatalf("Admit(%s) = %v, want %v", ip, err, want)
		}
		return tk
	}
	t1, t2 := admit(ip, nil), admit(ip, nil)
	admit(ip, ErrTooManyPreLogin)
	admit(other, nil) // another address has its own count
	if err := t1.Login("alice"); err != nil {
		t.Fatal(err)
	}
	t3 := admit(ip, nil) // t1 logged in: one pre-login place free
	admit(ip, ErrTooManyPreLogin)
	t2.Release() // never logged in
	admit(ip, nil)
	admit(ip, ErrTooManyPreLogin)
	if err := t3.Login("bob"); err != nil {
		t.Fatal(err)
	}
	admit(ip, nil)              // 4 sessions, 2 of them pre-login
	admit(ip, ErrTooManyFromIP) // the per-address cap counts every session
	st := a.Stats()
	if len(st.ByIP) != 2 || st.ByIP[0].Sessions != 4 || st.ByIP[0].PreLogin != 2 {
		t.Fatalf("Stats = %+v", st)
	}
}
