package upstream

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestRoute(t *testing.T) {
	cfg := Config{
		Backends: []string{"a", "b", "c"},
		Pools:    []Pool{{Name: "shared", Members: []string{"b", "c"}}},
		Rules: []Rule{
			{Users: []string{"alice"}, Target: "a"},
			{Groups: []string{"finance"}, Target: "b"},
			{Hosts: []string{"FTP.Example.com."}, Target: "c"},
			{Hosts: []string{"*.partners.example"}, Listeners: []string{"public"}, Target: "a"},
			{Listeners: []string{"internal"}, Target: "b"},
			{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")}, Target: "c"},
			{Hosts: []string{"2001:db8::21"}, Target: "b"},
		},
		Default: "shared",
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name string
		req  Request
		want string
	}{
		{"user", Request{User: "alice", Client: ip("10.1.1.1")}, "a"},
		{"user is case-sensitive", Request{User: "Alice"}, "shared"},
		{"group", Request{User: "bob", Groups: []string{"staff", "finance"}}, "b"},
		{"host normalised", Request{User: "bob", Host: " ftp.EXAMPLE.com "}, "c"},
		{"host with dot", Request{User: "bob", Host: "ftp.example.com."}, "c"},
		{"wildcard host and listener", Request{Host: "x.partners.example", Listener: "public"}, "a"},
		{"wildcard needs both conditions", Request{Host: "x.partners.example", Listener: "other"}, "shared"},
		{"wildcard does not match the apex", Request{Host: "partners.example", Listener: "public"}, "shared"},
		{"listener", Request{Listener: "internal"}, "b"},
		{"network", Request{Client: ip("127.0.0.2")}, "c"},
		{"network, mapped v4", Request{Client: ip("::ffff:10.2.3.4")}, "c"},
		{"other loopback: default", Request{Client: ip("127.0.0.1")}, "shared"},
		{"nothing known: default", Request{}, "shared"},
		{"IPv6 literal", Request{Host: "[2001:db8::21]"}, "b"},
		{"IPv6 literal, spelt otherwise", Request{Host: "[2001:DB8:0:0:0::21]"}, "b"},
		{"first match wins", Request{User: "alice", Groups: []string{"finance"}, Client: ip("127.0.0.2")}, "a"},
	} {
		if got := cfg.Route(tc.req); got != tc.want {
			t.Errorf("%s: Route = %q, want %q", tc.name, got, tc.want)
		}
	}
	if m := cfg.Members("shared"); len(m) != 2 {
		t.Errorf("Members(shared) = %v", m)
	}
	if m := cfg.Members("a"); len(m) != 1 || m[0] != "a" {
		t.Errorf("Members(a) = %v", m)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" valid
	}{
		{"ok", Config{Backends: []string{"a"}, Default: "a"}, ""},
		{"no default", Config{Backends: []string{"a", "b"}}, "routing.default: must be set"},
		{"unknown default", Config{Backends: []string{"a"}, Default: "x"}, "routing.default"},
		{"pool name clash", Config{Backends: []string{"a"}, Pools: []Pool{{Name: "a", Members: []string{"a"}}}, Default: "a"}, "pools[0].name"},
		{"empty pool", Config{Backends: []string{"a"}, Pools: []Pool{{Name: "p"}}, Default: "a"}, "pools[0].members: at least one"},
		{"unknown member", Config{Backends: []string{"a"}, Pools: []Pool{{Name: "p", Members: []string{"z"}}}, Default: "a"}, `"z" is not a backend`},
		{"member twice", Config{Backends: []string{"a"}, Pools: []Pool{{Name: "p", Members: []string{"a", "a"}}}, Default: "p"}, "listed twice"},
		{"rule target", Config{Backends: []string{"a"}, Rules: []Rule{{Target: "q"}}, Default: "a"}, "routing.rules[0].target"},
		{"rule without target", Config{Backends: []string{"a"}, Rules: []Rule{{Users: []string{"u"}}}, Default: "a"}, "routing.rules[0].target: must be set"},
		{"bad host", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"a b"}, Target: "a"}}, Default: "a"}, "routing.rules[0].hosts"},
		{"host with a port", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"ftp.example.com:21"}, Target: "a"}}, Default: "a"}, "routing.rules[0].hosts"},
		{"host not as A-labels", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"bücher.example"}, Target: "a"}}, Default: "a"}, "routing.rules[0].hosts"},
		{"wildcard alone", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"*"}, Target: "a"}}, Default: "a"}, "routing.rules[0].hosts"},
		{"wildcard and IPv6", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"*.example.com", "[2001:db8::1]", "192.0.2.1", "Ftp.Example.COM."}, Target: "a"}}, Default: "a"}, ""},
		{"inner wildcard", Config{Backends: []string{"a"}, Rules: []Rule{{Hosts: []string{"a.*.b"}, Target: "a"}}, Default: "a"}, "wildcard"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestPick(t *testing.T) {
	up := func(name string, sessions int64) Member { return Member{Name: name, Up: true, Sessions: sessions} }
	down := Member{Name: "down"}

	var p Picker
	var got []string
	members := []Member{up("a", 0), down, up("c", 0)}
	for range 4 {
		i, err := p.Pick(RoundRobin, members)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, members[i].Name)
	}
	if strings.Join(got, ",") != "a,c,a,c" {
		// in turn over the members that are up
		t.Errorf("round robin with one down: %v", got)
	}

	var q Picker
	for _, tc := range []struct {
		members []Member
		want    string
	}{
		{[]Member{up("a", 3), up("b", 1), up("c", 2)}, "b"},
		{[]Member{up("a", 3), {Name: "b", Sessions: 0}, up("c", 2)}, "c"},
		{[]Member{up("a", 1), up("b", 1)}, ""}, // a tie: either
	} {
		i, err := q.Pick(LeastSessions, tc.members)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want != "" && tc.members[i].Name != tc.want {
			t.Errorf("least sessions of %v: %s, want %s", tc.members, tc.members[i].Name, tc.want)
		}
	}
	// Ties rotate: two picks among equals take both.
	seen := map[string]bool{}
	for range 2 {
		m := []Member{up("a", 1), up("b", 1)}
		i, _ := q.Pick(LeastSessions, m)
		seen[m[i].Name] = true
	}
	if len(seen) != 2 {
		t.Errorf("least sessions ties do not rotate: %v", seen)
	}
	for _, b := range []Balance{RoundRobin, LeastSessions} {
		if _, err := q.Pick(b, []Member{down, down}); !errors.Is(err, ErrNoHealthy) {
			t.Errorf("%s, all down: %v", b, err)
		}
		if _, err := q.Pick(b, nil); !errors.Is(err, ErrNoHealthy) {
			t.Errorf("%s, none: %v", b, err)
		}
	}
}

func TestHealth(t *testing.T) {
	bad := errors.New("down")
	h := NewHealth(HealthConfig{Interval: time.Second, Rise: 2, Fall: 3})
	type step struct {
		err     error
		up      bool
		changed bool
	}
	for i, s := range []step{
		{bad, false, true},  // first result: down, and said
		{nil, false, false}, // 1 of rise 2
		{nil, true, true},   // up
		{bad, true, false},  // 1 of fall 3
		{nil, true, false},  // streak reset
		{bad, true, false},
		{bad, true, false},
		{bad, false, true}, // down
		{nil, false, false},
		{bad, false, false}, // streak reset
		{nil, false, false},
		{nil, true, true},
	} {
		up, changed := h.Observe(s.err)
		if up != s.up || changed != s.changed {
			t.Fatalf("step %d: up=%v changed=%v, want %v %v", i, up, changed, s.up, s.changed)
		}
	}
	first := NewHealth(HealthConfig{Interval: time.Second})
	if up, changed := first.Observe(nil); !up || !changed {
		t.Errorf("a first success: up=%v changed=%v, want up at once", up, changed)
	}
	if d := (HealthConfig{Interval: time.Second}).TimeoutOrDefault(); d != time.Second {
		t.Errorf("timeout default %s", d)
	}
}

func TestParseBalance(t *testing.T) {
	for in, want := range map[string]Balance{"": RoundRobin, "round_robin": RoundRobin, "Least_Sessions": LeastSessions} {
		if b, err := ParseBalance(in); err != nil || b != want {
			t.Errorf("ParseBalance(%q) = %v, %v", in, b, err)
		}
	}
	if _, err := ParseBalance("random"); err == nil {
		t.Error("ParseBalance(random) did not fail")
	}
}

// FuzzNormalizeHost: normalising is idempotent, never panics, and what it
// returns has no space or control byte.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"ftp.example.com", "[::1]", " A.B. ", "*.x", "a\x00b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeHost(s)
		if NormalizeHost(n) != n && !strings.HasPrefix(n, "[") && !strings.HasSuffix(n, ".") {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, n, NormalizeHost(n))
		}
		for _, c := range n {
			if c <= ' ' || c == 0x7f {
				t.Fatalf("%q kept a control byte: %q", s, n)
			}
		}
		r := Rule{Hosts: []string{s}, Target: "a"}
		_ = r.Matches(Request{Host: s})
	})
}

// TestHealthState: the snapshot says whether a result came in, and since
// when the state holds: a result that does not change the state leaves
// Since alone (a reload that keeps a backend keeps its Health, and so its
// Since).
func TestHealthState(t *testing.T) {
	h := NewHealth(HealthConfig{Interval: time.Second, Rise: 1, Fall: 2})
	if st := h.State(); st.Known || st.Up || st.Since.IsZero() {
		t.Fatalf("fresh: %+v, want unknown, down, with a start time", st)
	}
	h.Observe(nil)
	up := h.State()
	if !up.Known || !up.Up || up.LastErr != nil {
		t.Fatalf("after a success: %+v", up)
	}
	time.Sleep(2 * time.Millisecond)
	h.Observe(errors.New("refused")) // 1 of fall 2: still up
	if st := h.State(); !st.Up || !st.Since.Equal(up.Since) || st.LastErr == nil {
		t.Errorf("one failure: %+v, want up since %v with the error", st, up.Since)
	}
	h.Observe(errors.New("refused"))
	if st := h.State(); st.Up || !st.Since.After(up.Since) {
		t.Errorf("down: %+v, want a new since", st)
	}
}

// TestPickFairWithMemberDown: a member that is down gives its share to
// every member that is up, not to the one after it: with one of three
// down, the other two take half each (round robin, and least sessions
// among equals).
func TestPickFairWithMemberDown(t *testing.T) {
	for _, down := range []int{0, 1, 2} {
		for _, b := range []Balance{RoundRobin, LeastSessions} {
			members := []Member{{Name: "a", Up: true}, {Name: "b", Up: true}, {Name: "c", Up: true}}
			members[down].Up = false
			var p Picker
			count := map[string]int{}
			for range 300 {
				i, err := p.Pick(b, members)
				if err != nil {
					t.Fatal(err)
				}
				count[members[i].Name]++
			}
			for i, m := range members {
				if i != down && count[m.Name] != 150 {
					t.Errorf("%s with %s down: %v, want 150 each for the two up", b, members[down].Name, count)
					break
				}
			}
		}
	}
}

func TestCheckHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"ftp.example.com": true, "FTP.Example.COM.": true, " x.y ": true, "xn--bcher-kva.example": true, "_ftp.example": true,
		"192.0.2.1": true, "[2001:db8::1]": true, "2001:db8::1": true, "[::ffff:192.0.2.1]": true,
		"": false, ".": false, "a..b": false, ".a": false, "a b": false, "a\tb": false, "a/b": false, "a:21": false,
		"*.example.com": false, "bücher.example": false, "[192.0.2.1]": false, "[fe80::1%eth0]": false, "fe80::1%eth0": false,
		"[::1": false, "::1]": false, strings.Repeat("a", 64): false, strings.Repeat("a.", 127) + "ab": false,
	} {
		if err := CheckHost(h); (err == nil) != ok {
			t.Errorf("CheckHost(%.30q) = %v, want ok=%v", h, err, ok)
		}
		if CheckHost(h) == nil && NormalizeHost(h) == "" {
			t.Errorf("%q passes CheckHost but normalises to nothing", h)
		}
	}
}

// FuzzCheckHost: what HOST accepts is at most 253 characters plus brackets
// or a trailing dot, normalises to a non-empty name, and a rule naming it
// matches it.
func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"ftp.example.com", "[2001:db8::1]", "2001:DB8::1", "10.0.0.1", "a..b", "xn--bcher-kva.example", "[fe80::1%eth0]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckHost(s) != nil {
			return
		}
		if len(strings.TrimSpace(s)) > MaxHostLength+2 {
			t.Fatalf("accepted %d characters: %q", len(s), s)
		}
		n := NormalizeHost(s)
		if n == "" {
			t.Fatalf("accepted %q, which normalises to nothing", s)
		}
		if !(Rule{Hosts: []string{n}, Target: "a"}).Matches(Request{Host: s}) {
			t.Fatalf("a rule for %q does not match HOST %q", n, s)
		}
	})
}
