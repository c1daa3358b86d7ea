package policy

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

type hookLog struct {
	logins   []string
	released int
	refuse   error
}

func (h *hookLog) Login(user string) error { h.logins = append(h.logins, user); return h.refuse }
func (h *hookLog) Release()                { h.released++ }

func TestTicketHook(t *testing.T) {
	a := NewAdmission(Limits{MaxSessionsPerUser: 1}, nil)
	ip := netip.MustParseAddr("192.0.2.1")
	tk, err := a.Admit(ip)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookLog{refuse: ErrTooManyForUser}
	tk.Attach(h)
	if err := tk.Login("alice"); !errors.Is(err, ErrTooManyForUser) {
		t.Fatalf("Login = %v, want the hook's refusal", err)
	}
	if n := a.Stats().Users; n != 0 {
		t.Fatalf("a refused login is still counted: %d users", n)
	}
	h.refuse = nil
	if err := tk.Login("alice"); err != nil {
		t.Fatal(err)
	}
	if tk.UserSessions() != 1 || len(h.logins) != 2 {
		t.Fatalf("user sessions %d, hook logins %v", tk.UserSessions(), h.logins)
	}
	tk.Release()
	tk.Release()
	if h.released != 1 {
		t.Fatalf("hook released %d times, want 1", h.released)
	}
}

func TestDefenderPut(t *testing.T) {
	var evs []BanEvent
	d, err := NewDefender(BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, func(e BanEvent) { evs = append(evs, e) })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	b := Ban{IP: netip.MustParseAddr("::ffff:192.0.2.9"), Since: now, Until: now.Add(time.Hour), Reason: "fleet", Offences: 3}
	first := d.Put(b)
	again := d.Put(b) // the same ban: no second event
	if !first || !again {
		t.Fatal("Put refused a ban")
	}
	if len(evs) != 1 || evs[0].Offences != 3 || evs[0].IP != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("events %+v, want one ban of the unmapped address", evs)
	}
	if l := d.List(); len(l) != 1 || l[0].Offences != 3 || !l[0].Until.Equal(b.Until) {
		t.Fatalf("List = %+v", l)
	}
	if d.Put(Ban{IP: netip.MustParseAddr("10.1.1.1"), Until: now.Add(time.Hour)}) {
		t.Fatal("Put banned an allowlisted address")
	}
	if d.Put(Ban{IP: netip.MustParseAddr("192.0.2.10"), Until: now.Add(-time.Second)}) {
		t.Fatal("Put installed an ended ban")
	}
}
