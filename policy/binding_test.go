package policy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestParseSessionReuse(t *testing.T) {
	for in, want := range map[string]SessionReuse{
		"user": ReuseUser, "required": ReuseUser, "": ReuseUser, " Session ": ReuseSession, "optional": ReuseOptional,
	} {
		got, err := ParseSessionReuse(in)
		if err != nil || got != want {
			t.Errorf("ParseSessionReuse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseSessionReuse("strict"); err == nil {
		t.Error(`"strict" accepted`)
	}
	if !ReuseUser.Required() || !ReuseSession.Required() || ReuseOptional.Required() {
		t.Error("Required is wrong")
	}
	var zero TLSConfig
	if zero.DataSessionReuse != ReuseUser {
		t.Error("the zero TLSConfig does not bind data connections to user and address")
	}
	if err := (TLSConfig{DataSessionReuse: 7}).Validate(); err == nil {
		t.Error("an unknown mode validates")
	}
}

func TestMayResume(t *testing.T) {
	ip1, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	self := SessionPeer{ID: "b", Addr: ip1, User: "alice", LoggedIn: true}
	sib := SessionPeer{ID: "a", Addr: ip1, User: "alice", LoggedIn: true}
	with := func(p SessionPeer, f func(*SessionPeer)) SessionPeer { f(&p); return p }
	for _, tc := range []struct {
		name        string
		mode        SessionReuse
		self, owner SessionPeer
		live        bool
		want        error
	}{
		{"own ticket, user", ReuseUser, self, self, true, nil},
		{"own ticket, session", ReuseSession, self, self, true, nil},
		{"own ticket, before login", ReuseUser, with(self, func(p *SessionPeer) { p.LoggedIn = false }), with(self, func(p *SessionPeer) { p.LoggedIn = false }), true, nil},
		{"own ticket, not listed", ReuseUser, SessionPeer{ID: "b"}, SessionPeer{ID: "b"}, false, nil},
		{"sibling, user", ReuseUser, self, sib, true, nil},
		{"sibling, session", ReuseSession, self, sib, true, ErrOtherSession},
		{"sibling, optional", ReuseOptional, self, sib, true, nil},
		{"stranger, optional", ReuseOptional, self, SessionPeer{ID: "z"}, false, nil},
		{"sibling ended", ReuseUser, self, sib, false, ErrSessionEnded},
		{"self not logged in", ReuseUser, with(self, func(p *SessionPeer) { p.LoggedIn = false }), sib, true, ErrNotLoggedIn},
		{"self before USER", ReuseUser, SessionPeer{ID: "b", Addr: ip1}, sib, true, ErrNotLoggedIn},
		{"self not listed", ReuseUser, SessionPeer{ID: "b"}, sib, true, ErrNotLoggedIn},
		{"sibling not logged in", ReuseUser, self, with(sib, func(p *SessionPeer) { p.LoggedIn = false }), true, ErrPeerNotLogged},
		{"sibling USER sent, no login", ReuseUser, self, with(sib, func(p *SessionPeer) { p.LoggedIn = false; p.User = "alice" }), true, ErrPeerNotLogged},
		{"other user", ReuseUser, self, with(sib, func(p *SessionPeer) { p.User = "bob" }), true, ErrOtherUser},
		{"user differs in case", ReuseUser, self, with(sib, func(p *SessionPeer) { p.User = "Alice" }), true, ErrOtherUser},
		{"user with trailing space", ReuseUser, self, with(sib, func(p *SessionPeer) { p.User = "alice " }), true, ErrOtherUser},
		{"other address", ReuseUser, self, with(sib, func(p *SessionPeer) { p.Addr = ip2 }), true, ErrOtherAddress},
		{"IPv4-mapped address", ReuseUser, self, with(sib, func(p *SessionPeer) { p.Addr = netip.AddrFrom16(ip1.As16()) }), true, ErrOtherAddress},
		{"no address on either", ReuseUser, with(self, func(p *SessionPeer) { p.Addr = netip.Addr{} }), with(sib, func(p *SessionPeer) { p.Addr = netip.Addr{} }), true, ErrOtherAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MayResume(tc.mode, tc.self, tc.owner, tc.live); !errors.Is(got, tc.want) {
				t.Fatalf("MayResume = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSessionRegistry(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	r := NewSessionRegistry(2)
	if !r.Join("a", ip) || !r.Join("b", ip) {
		t.Fatal("join refused below the limit")
	}
	if r.Join("c", ip) {
		t.Fatal("joined over the limit")
	}
	if !r.Join("a", ip) {
		t.Fatal("a listed session could not join again")
	}
	r.LoggedIn("a", "alice")
	r.LoggedIn("c", "alice") // not listed: stays so
	if p, ok := r.Peer("a"); !ok || !p.LoggedIn || p.User != "alice" || p.Addr != ip || p.ID != "a" {
		t.Fatalf("Peer(a) = %+v, %v", p, ok)
	}
	if _, ok := r.Peer("c"); ok {
		t.Fatal("an unlisted session appeared")
	}
	r.Leave("a")
	if _, ok := r.Peer("a"); ok || r.Len() != 1 {
		t.Fatalf("a still listed (len %d)", r.Len())
	}
	if !r.Join("c", ip) {
		t.Fatal("no room after a session left")
	}
	// AwaitLogin: at once for an unknown or logged-in session; until the
	// login or the end for one logging in; the wait's end otherwise.
	r = NewSessionRegistry(0)
	if _, ok := r.AwaitLogin("nobody", time.Hour); ok {
		t.Fatal("an unknown session is live")
	}
	r.Join("d", ip)
	go func() { time.Sleep(20 * time.Millisecond); r.LoggedIn("d", "dora") }()
	if p, ok := r.AwaitLogin("d", time.Hour); !ok || !p.LoggedIn || p.User != "dora" {
		t.Fatalf("AwaitLogin(d) = %+v, %v", p, ok)
	}
	if p, ok := r.AwaitLogin("d", time.Hour); !ok || !p.LoggedIn {
		t.Fatalf("AwaitLogin(d) again = %+v, %v", p, ok)
	}
	r.Join("e", ip)
	go func() { time.Sleep(20 * time.Millisecond); r.Leave("e") }()
	if _, ok := r.AwaitLogin("e", time.Hour); ok {
		t.Fatal("a session that left is live")
	}
	r.Leave("d")
	r.Join("f", ip)
	if p, ok := r.AwaitLogin("f", 20*time.Millisecond); !ok || p.LoggedIn {
		t.Fatalf("AwaitLogin(f) = %+v, %v", p, ok)
	}
	r.Leave("f")
	if r.max != DefaultMaxBoundSessions {
		t.Fatal("no default bound")
	}

	// Concurrent use (go test -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("s", i)
			r.Join(id, ip)
			r.LoggedIn(id, "u")
			r.Peer(id)
			r.Leave(id)
		}()
	}
	wg.Wait()
}

// bindingFixture is one server tls.Config with rotating ticket keys, a
// registry, and the sessions bound to them.
type bindingFixture struct {
	base *tls.Config
	keys TicketKeys
	reg  *SessionRegistry

	mu        sync.Mutex
	decisions []error // Foreign's, in order
}

func newBindingFixture(t *testing.T) *bindingFixture {
	t.Helper()
	cert, err := GenerateSelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	base, err := TLSConfig{}.ServerConfig(NewCertStore(cert))
	if err != nil {
		t.Fatal(err)
	}
	f := &bindingFixture{base: base, reg: NewSessionRegistry(0)}
	f.keys.Register(base)
	return f
}

func (f *bindingFixture) bind(id string, mode SessionReuse) *tls.Config {
	return BindSession(f.base, Binding{Session: id, Mode: mode, Peers: f.reg, Foreign: func(_ string, err error) {
		f.mu.Lock()
		f.decisions = append(f.decisions, err)
		f.mu.Unlock()
	}})
}

// lastDecision is Foreign's last verdict; ok false when there was none.
func (f *bindingFixture) lastDecision() (err error, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.decisions) == 0 {
		return nil, false
	}
	return f.decisions[len(f.decisions)-1], true
}

// TestBindSession: a ticket resumes on its own session's config, across a
// key rotation; never on another session's in session mode.
func TestBindSession(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			f := newBindingFixture(t)
			a, b := f.bind("a", ReuseSession), f.bind("b", ReuseSession)
			client := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4), ServerName: "x", MaxVersion: v}
			if resumed := handshake(t, a, client); resumed {
				t.Fatal("first handshake resumed")
			}
			if !handshake(t, a, client) {
				t.Fatal("own session not resumed")
			}
			f.keys.Rotate()
			if !handshake(t, f.bind("a", ReuseSession), client) {
				// A clone made after rotation still knows the previous key.
				t.Fatal("ticket not resumed after one rotation")
			}
			if !handshake(t, a, client) {
				// A clone made before the rotation opens tickets sealed after it.
				t.Fatal("a session older than the rotation did not resume its newer ticket")
			}
			if handshake(t, b, client) {
				t.Fatal("another session's ticket resumed")
			}
			if err, _ := f.lastDecision(); !errors.Is(err, ErrOtherSession) {
				t.Fatalf("refusal = %v", err)
			}
			if BindSession(f.base, Binding{Session: "a", Mode: ReuseOptional}) != f.base {
				t.Fatal("optional binds")
			}
		})
	}
}

// TestBindSessionSibling: two sessions of one config, a client with one
// session cache: session A's ticket resumes on B's connection in user mode
// only while both are logged in as the same user from the same address and
// A is live.
func TestBindSessionSibling(t *testing.T) {
	ip, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	for _, tc := range []struct {
		name string
		mode SessionReuse
		// set lists and logs in the sessions (A's ticket already issued)
		set  func(r *SessionRegistry)
		want error
	}{
		{"same user and address", ReuseUser, func(r *SessionRegistry) {
			r.Join("a", ip)
			r.LoggedIn("a", "alice")
			r.Join("b", ip)
			r.LoggedIn("b", "alice")
		}, nil},
		{"session mode", ReuseSession, func(r *SessionRegistry) {
			r.Join("a", ip)
			r.LoggedIn("a", "alice")
			r.Join("b", ip)
			r.LoggedIn("b", "alice")
		}, ErrOtherSession},
		{"B before login", ReuseUser, func(r *SessionRegistry) {
			r.Join("a", ip)
			r.LoggedIn("a", "alice")
			r.Join("b", ip)
		}, ErrNotLoggedIn},
		{"other user", ReuseUser, func(r *SessionRegistry) {
			r.Join("a", ip)
			r.LoggedIn("a", "alice")
			r.Join("b", ip)
			r.LoggedIn("b", "bob")
		}, ErrOtherUser},
		{"other address", ReuseUser, func(r *SessionRegistry) {
			r.Join("a", other)
			r.LoggedIn("a", "alice")
			r.Join("b", ip)
			r.LoggedIn("b", "alice")
		}, ErrOtherAddress},
		{"A ended", ReuseUser, func(r *SessionRegistry) {
			r.Join("a", ip)
			r.LoggedIn("a", "alice")
			r.Leave("a")
			r.Join("b", ip)
			r.LoggedIn("b", "alice")
		}, ErrSessionEnded},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tc.name+"/"+tls.VersionName(v), func(t *testing.T) {
				f := newBindingFixture(t)
				a, b := f.bind("a", tc.mode), f.bind("b", tc.mode)
				client := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4), ServerName: "x", MaxVersion: v}
				handshake(t, a, client) // the client's cache holds A's ticket
				tc.set(f.reg)
				resumed := handshake(t, b, client)
				err, decided := f.lastDecision()
				if resumed != (tc.want == nil) {
					t.Fatalf("resumed = %v, want %v (decision %v)", resumed, tc.want == nil, err)
				}
				if !decided || !errors.Is(err, tc.want) {
					t.Fatalf("decision on A's ticket = %v (made: %v), want %v", err, decided, tc.want)
				}
			})
		}
	}
}

// TestBindSessionSiblingLoggingIn: the newest ticket in a client's cache is
// often that of a control connection still between AUTH and PASS; the
// handshake waits (LoginWait) for that login, and refuses the ticket if the
// sibling does not log in in time, or logs in as another user.
func TestBindSessionSiblingLoggingIn(t *testing.T) {
	ip := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name  string
		login string // the user A logs in as, 50 ms into B's handshake; "": never
		want  error
	}{
		{"logs in as the same user", "alice", nil},
		{"logs in as another user", "bob", ErrOtherUser},
		{"never logs in", "", ErrPeerNotLogged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newBindingFixture(t)
			bind := func(id string) *tls.Config {
				return BindSession(f.base, Binding{Session: id, Mode: ReuseUser, Peers: f.reg, LoginWait: 300 * time.Millisecond,
					Foreign: func(_ string, err error) { f.mu.Lock(); f.decisions = append(f.decisions, err); f.mu.Unlock() }})
			}
			client := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: tls.NewLRUClientSessionCache(4), ServerName: "x"}
			f.reg.Join("a", ip)
			handshake(t, bind("a"), client) // A's ticket, A not logged in yet
			f.reg.Join("b", ip)
			f.reg.LoggedIn("b", "alice")
			if tc.login != "" {
				go func() { time.Sleep(50 * time.Millisecond); f.reg.LoggedIn("a", tc.login) }()
			}
			resumed := handshake(t, bind("b"), client)
			err, _ := f.lastDecision()
			if resumed != (tc.want == nil) || !errors.Is(err, tc.want) {
				t.Fatalf("resumed %v, decision %v; want %v", resumed, err, tc.want)
			}
		})
	}
}
