package proxy

import (
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// TestReloadBackendsSwap: a reload keeps the live state of a backend
// whose settings are unchanged (the same upBackend: its health, checker
// and session count), gives a changed one a new state, and a session
// holding a backend the new set removed or changed does not keep it at
// its next login (holds); a bad set changes nothing.
func TestReloadBackendsSwap(t *testing.T) {
	a := Backend{Name: "a", Address: "127.0.0.1:2101"}
	b := Backend{Name: "b", Address: "127.0.0.1:2102"}
	cfg := Config{
		Listeners: []Listener{{Name: "l", Address: "127.0.0.1:0", TLS: TLSExplicit}},
		Backends:  []Backend{a, b},
		Routing:   Routing{Default: "a"},
		Passive:   nat.Config{Ports: nat.PortRange{Low: 55090, High: 55091}},
	}
	s, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	old := s.ups.Load()
	a0, b0 := old.byName["a"], old.byName["b"]
	a0.sessions.Add(2) // two sessions run on a

	b2 := b
	b2.Address = "127.0.0.1:2103"
	if err := s.ReloadBackends(Config{Backends: []Backend{a, b2}, Routing: Routing{Default: "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	cur := s.ups.Load()
	if cur.byName["a"] != a0 || cur.byName["a"].sessions.Load() != 2 {
		t.Error("the unchanged backend a lost its live state")
	}
	if cur.byName["b"] == b0 || cur.byName["b"].cfg.Address != "127.0.0.1:2103" {
		t.Error("the changed backend b kept its old state")
	}
	if up, target, err := cur.choose(upstream.Request{User: "x"}); err != nil || up != cur.byName["b"] || target != "b" {
		t.Errorf("a new session after the reload: %v %s %v, want b", up, target, err)
	}
	if !cur.holds("a", a0) || cur.holds("b", b0) {
		t.Error("holds: an unchanged backend is kept, a changed one is not")
	}

	if err := s.ReloadBackends(Config{Backends: []Backend{b2}, Routing: Routing{Default: "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	cur = s.ups.Load()
	if cur.byName["a"] != nil || cur.holds("b", a0) || len(s.Backends()) != 1 {
		t.Error("the removed backend a is still in the set")
	}
	if a0.sessions.Load() != 2 {
		t.Error("the removed backend's running sessions were touched")
	}

	err = s.ReloadBackends(Config{Backends: []Backend{b2}, Pools: []upstream.Pool{{Name: "p", Members: []string{"b", "zz"}}}, Routing: Routing{Default: "p"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "pools[0].members") {
		t.Fatalf("a pool with an unknown member: %v", err)
	}
	if s.ups.Load() != cur {
		t.Error("a refused reload changed the set")
	}
	err = s.ReloadBackends(Config{Backends: []Backend{{Name: "v", Address: "10.0.0.1:21", Via: "nosuch"}}, Routing: Routing{Default: "v"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nosuch") || s.ups.Load() != cur {
		t.Fatalf("a via naming no tunnel: %v", err)
	}
}

// TestReloadBackendsRereadsTLS: a kept backend's TLS files are read again
// at each reload (a rotated CA file takes effect); a CA file that no
// longer loads refuses the reload and keeps the last good configuration.
func TestReloadBackendsRereadsTLS(t *testing.T) {
	dir := t.TempDir()
	f, err := testpki.WriteServer(dir, "backend ca")
	if err != nil {
		t.Fatal(err)
	}
	b := Backend{Name: "t", Address: "127.0.0.1:2104", TLS: TLSExplicit, Trust: policy.BackendTLS{CAFile: f.CAFile, ServerName: "localhost"}}
	cfg := Config{
		Listeners: []Listener{{Name: "l", Address: "127.0.0.1:0", TLS: TLSExplicit}},
		Backends:  []Backend{b},
		Routing:   Routing{Default: "t"},
		Passive:   nat.Config{Ports: nat.PortRange{Low: 55092, High: 55093}},
	}
	s, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	up := s.ups.Load().byName["t"]
	first := up.tlsConfig()
	if err := s.ReloadBackends(Config{Backends: []Backend{b}, Routing: Routing{Default: "t"}}, nil); err != nil {
		t.Fatal(err)
	}
	if s.ups.Load().byName["t"] != up || up.tlsConfig() == first || up.tlsConfig() == nil {
		t.Error("the kept backend's TLS configuration was not read again")
	}
	good := up.tlsConfig()
	if err := os.WriteFile(f.CAFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.ReloadBackends(Config{Backends: []Backend{b}, Routing: Routing{Default: "t"}}, nil); err == nil {
		t.Fatal("a CA file that does not load was accepted")
	}
	if up.tlsConfig() != good {
		t.Error("a refused reload changed the TLS configuration")
	}
}
