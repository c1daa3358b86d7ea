package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// backendInfo returns the gateway's view of backend name (the admin API's).
func backendInfo(t *testing.T, g *gateway, name string) (proxy.BackendInfo, bool) {
	t.Helper()
	for _, b := range g.srv.Backends() {
		if b.Name == name {
			return b, true
		}
	}
	return proxy.BackendInfo{}, false
}

// TestReloadBackends: reloading the backends swaps the routing for new
// sessions only. A running session keeps the backend it was routed to,
// even once a reload removed it; an unchanged backend keeps its health
// state (no flap to "unknown") and its checker; a removed backend's checker
// stops (its check series leave the metrics and do not come back); a bad
// set changes nothing and the error names the key.
func TestReloadBackends(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	checked := proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: 100 * time.Millisecond, Rise: 1, Fall: 1}}
	ba := proxy.Backend{Name: "a", Address: a.srv.Addr(), Health: checked}
	bb := proxy.Backend{Name: "b", Address: b.srv.Addr(), Health: checked}
	g := startGateway(t, withBackends([]proxy.Backend{ba, bb}, nil, proxy.Routing{Default: "a"}))
	reload := func(bs []proxy.Backend, routing proxy.Routing) error {
		return g.srv.ReloadBackends(proxy.Config{Backends: bs, Routing: routing}, nil)
	}

	old := dialAs(t, g, user, "")
	if got := on(t, old, "a", "b"); got != "a" {
		t.Fatalf("first session reached %s, want a", got)
	}
	before, _ := backendInfo(t, g, "a")
	if before.State != "up" || before.Sessions != 1 {
		t.Fatalf("a before the reload: %+v, want up with one session", before)
	}

	// Route everyone to b: a is unchanged and keeps its state.
	if err := reload([]proxy.Backend{ba, bb}, proxy.Routing{Default: "b"}); err != nil {
		t.Fatal(err)
	}
	if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "b" {
		t.Errorf("a session after the reload reached %s, want b", got)
	}
	if got := on(t, old, "a", "b"); got != "a" {
		t.Errorf("the running session moved to %s", got)
	}
	after, _ := backendInfo(t, g, "a")
	if after.State != "up" || !after.Since.Equal(before.Since) || after.Sessions != 1 {
		t.Errorf("unchanged a after the reload: %+v, want its state kept (%+v)", after, before)
	}

	// A bad set: nothing changes, the error names the key.
	err := reload([]proxy.Backend{ba, bb}, proxy.Routing{Default: "nowhere"})
	if err == nil || !strings.Contains(err.Error(), "routing.default") {
		t.Fatalf("bad routing: %v, want an error naming routing.default", err)
	}
	if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "b" {
		t.Errorf("after a refused reload a session reached %s, want b (the last good set)", got)
	}

	// Remove a: the running session still works on it, a's checks stop.
	if err := reload([]proxy.Backend{bb}, proxy.Routing{Default: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := backendInfo(t, g, "a"); ok {
		t.Error("a removed backend is still listed")
	}
	if metricValue(scrape(t, g), `ftpsgate_backend_up{backend="a"}`) != "" {
		t.Error("a removed backend still has its backend_up series")
	}
	time.Sleep(350 * time.Millisecond) // three of its intervals
	if m := scrape(t, g); metricValue(m, `ftpsgate_backend_up{backend="a"}`) != "" ||
		metricValue(m, `ftpsgate_backend_checks_total{backend="a",result="ok"}`) != "" {
		t.Error("a removed backend is still checked")
	}
	if metricValue(scrape(t, g), `ftpsgate_backend_up{backend="b"}`) != "1" {
		t.Error("backend b is not up in the metrics")
	}
	if got := on(t, old, "a", "b"); got != "a" {
		t.Errorf("the session on the removed backend moved to %s", got)
	}
	if err := old.Stor("late.txt", strings.NewReader("still here")); err != nil {
		t.Errorf("a transfer on the removed backend's session: %v", err)
	}
	if got := string(readFile(t, a.root+"/late.txt")); got != "still here" {
		t.Errorf("the upload reached a as %q", got)
	}
	// The session list names the backend each session holds: the first
	// on the removed a, the two later ones on b.
	perBackend := map[string]int{}
	for _, si := range g.srv.Sessions() {
		perBackend[si.Backend]++
	}
	if perBackend["a"] != 1 || perBackend["b"] != 2 || len(perBackend) != 2 {
		t.Errorf("sessions per listed backend: %v, want a:1 b:2", perBackend)
	}
	// Its sessions series counts that session, and goes with it.
	if got := metricValue(scrape(t, g), `ftpsgate_backend_sessions{backend="a"}`); got != "1" {
		t.Errorf("removed backend a with a session on it: backend_sessions %q, want 1", got)
	}
	old.Quit()
	waitUntil(t, "the removed backend's sessions series to go", func() bool {
		return metricValue(scrape(t, g), `ftpsgate_backend_sessions{backend="a"}`) == ""
	})

	// A changed backend gets a fresh checker (and its first result before
	// the swap: it is up at once).
	bb.Health.Fall = 2
	if err := reload([]proxy.Backend{bb}, proxy.Routing{Default: "b"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := backendInfo(t, g, "b"); got.State != "up" {
		t.Errorf("changed b after the reload: %+v, want up (its first check ran before the swap)", got)
	}
	if !strings.Contains(g.logs.String(), `"backend":"a","address":"`+a.srv.Addr()+`","checked":false,"message":"backend removed by a reload"`) {
		t.Errorf("no log line for the removed backend:\n%s", g.logs.String())
	}
}

// TestReloadKeepsRoundRobinTurn: a reload keeps a pool's turn: with a
// reload between sessions (configuration management sending SIGHUP), a
// round-robin pool still takes sessions in turn, not each on its first
// member.
func TestReloadKeepsRoundRobinTurn(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	bs := []proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}
	pools := []upstream.Pool{{Name: "pool", Members: []string{"a", "b"}}}
	g := startGateway(t, withBackends(bs, pools, proxy.Routing{Default: "pool"}))
	count := map[string]int{}
	for range 4 {
		c := dialAs(t, g, user, "")
		count[on(t, c, "a", "b")]++
		c.Quit()
		if err := g.srv.ReloadBackends(proxy.Config{Backends: bs, Pools: pools, Routing: proxy.Routing{Default: "pool"}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if count["a"] != 2 || count["b"] != 2 {
		t.Errorf("4 sessions with a reload after each: %v, want 2 and 2", count)
	}
}

// TestReloadWhileSessionsStart: reloads that add, change and remove a
// backend while sessions log in and quit (run it with -race): every login
// succeeds, and once all quit no backend counts a session.
func TestReloadWhileSessionsStart(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	ba, bb := proxy.Backend{Name: "a", Address: a.srv.Addr()}, proxy.Backend{Name: "b", Address: b.srv.Addr()}
	bb2 := bb
	bb2.DataPorts = nat.PortRange{Low: 1024, High: 65535} // changed: a new live state
	sets := []proxy.Config{
		{Backends: []proxy.Backend{ba, bb}, Pools: []upstream.Pool{{Name: "p", Members: []string{"a", "b"}, Balance: upstream.LeastSessions}}, Routing: proxy.Routing{Default: "p"}},
		{Backends: []proxy.Backend{ba}, Routing: proxy.Routing{Default: "a"}},
		{Backends: []proxy.Backend{ba, bb2}, Pools: []upstream.Pool{{Name: "p", Members: []string{"a", "b"}}}, Routing: proxy.Routing{Default: "p"}},
	}
	g := startGateway(t, withBackends(sets[0].Backends, sets[0].Pools, sets[0].Routing))
	stop := make(chan struct{})
	reloaded := make(chan int)
	go func() {
		n := 0
		defer func() { reloaded <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if err := g.srv.ReloadBackends(sets[n%len(sets)], nil); err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 4 {
				c, err := dialAsErr(g, user, "")
				if err != nil {
					t.Errorf("login %d.%d: %v", i, j, err)
					return
				}
				c.Quit()
			}
		}()
	}
	wg.Wait()
	close(stop)
	t.Logf("%d reloads during 24 logins", <-reloaded)
	waitUntil(t, "no session counted on any backend", func() bool {
		for _, bi := range g.srv.Backends() {
			if bi.Sessions != 0 {
				return false
			}
		}
		return len(g.srv.Sessions()) == 0
	})
}
