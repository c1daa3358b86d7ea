package e2e

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// Several backends: each demo backend holds a marker file named after it,
// so that a session shows which backend it reached (SIZE marker-NAME is 213
// there and 550 elsewhere).

// demoBackend is one more demo backend, with user login and the marker
// file marker-name in its root.
type demoBackend struct {
	name string
	srv  *demoftpd.Server
	root string
}

func startDemoBackend(t *testing.T, name, login string) *demoBackend {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "marker-"+name), []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: login, Password: password})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close() })
	return &demoBackend{name: name, srv: srv, root: root}
}

// withBackends replaces the harness's backend by named ones, pools and
// rules.
func withBackends(bs []proxy.Backend, pools []upstream.Pool, routing proxy.Routing) option {
	return func(c *proxy.Config) {
		c.Backend = proxy.Backend{}
		c.Backends, c.Pools, c.Routing = bs, pools, routing
	}
}

// dialAs logs in as login through the gateway's explicit listener, from
// the local address from ("" : any).
func dialAs(t *testing.T, g *gateway, login, from string) *ftp.ServerConn {
	t.Helper()
	c, err := dialAsErr(g, login, from)
	if err != nil {
		t.Fatalf("login as %s from %q: %v", login, from, err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

func dialAsErr(g *gateway, login, from string) (*ftp.ServerConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := ftp.Dial(g.addr("explicit"), ftp.DialWithTimeout(10*time.Second), ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithDialer(d))
	if err != nil {
		return nil, err
	}
	if err := c.Login(login, password); err != nil {
		c.Quit()
		return nil, err
	}
	return c, nil
}

// on returns the backend a session reached: the one whose marker it sees.
func on(t *testing.T, c *ftp.ServerConn, names ...string) string {
	t.Helper()
	found := ""
	for _, n := range names {
		if _, err := c.FileSize("marker-" + n); err == nil {
			if found != "" {
				t.Fatalf("the session sees markers of %s and %s", found, n)
			}
			found = n
		}
	}
	if found == "" {
		t.Fatalf("the session sees no marker of %v", names)
	}
	return found
}

// TestRouteByUser: alice goes to backend a by a users rule; demo, matched
// by no rule, to the default b. Each backend knows only its own user: a
// wrong route would fail the login.
func TestRouteByUser(t *testing.T) {
	a := startDemoBackend(t, "a", "alice")
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Users: []string{"alice"}, Target: "a"}}, Default: "b"}))

	if got := on(t, dialAs(t, g, "alice", ""), "a", "b"); got != "a" {
		t.Errorf("alice reached %s, want a", got)
	}
	c := dialAs(t, g, user, "")
	if got := on(t, c, "a", "b"); got != "b" {
		t.Errorf("demo reached %s, want b", got)
	}
	// The data connections go to the chosen backend too.
	data := randomBytes(t, 100_000)
	if err := c.Stor("up.bin", strings.NewReader(string(data))); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(b.root, "up.bin")); sum(got) != sum(data) {
		t.Error("the upload did not reach backend b whole")
	}
}

// TestRouteByUserAfterFailedLogin: a session whose first login (routed to
// one backend) failed, then logs in as another user, goes where the rules
// send that user: the backend connection of the failed attempt is let go.
func TestRouteByUserAfterFailedLogin(t *testing.T) {
	a := startDemoBackend(t, "a", "alice")
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Users: []string{"alice"}, Target: "a"}}, Default: "b"}))
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER alice", wire.StatusNeedPassword)
	c.do("PASS wrong", wire.StatusNotLoggedIn)
	c.do("USER "+user, wire.StatusNeedPassword)
	c.do("PASS "+password, wire.StatusLoggedIn)
	c.do("SIZE marker-b", wire.StatusFileStatus)
	c.do("QUIT", wire.StatusClosing)
}

// TestRouteByHost: HOST (RFC 7151) before USER chooses the backend; both
// backends have the same user, so only the marker tells them apart.
func TestRouteByHost(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Hosts: []string{"*.partners.example"}, Target: "b"}}, Default: "a"}))
	for _, tc := range []struct {
		host string // "": no HOST
		want string
	}{
		{"ACME.partners.example", "b"},
		{"partners.example", "a"},
		{"", "a"},
	} {
		c := dialRaw(t, g.addr("explicit"), false)
		c.startTLS()
		if tc.host != "" {
			c.do("HOST "+tc.host, wire.StatusReady)
		}
		c.do("USER "+user, wire.StatusNeedPassword)
		c.do("PASS "+password, wire.StatusLoggedIn)
		c.do("SIZE marker-"+tc.want, wire.StatusFileStatus)
		c.do("QUIT", wire.StatusClosing)
	}
}

// TestRouteByNetwork: a client from 127.0.0.2 goes to b by a networks
// rule, one from 127.0.0.1 to the default a; a transfer from 127.0.0.2
// works (its data connection comes from the control connection's address).
func TestRouteByNetwork(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Target: "b"}}, Default: "a"}))

	if got := on(t, dialAs(t, g, user, "127.0.0.1"), "a", "b"); got != "a" {
		t.Errorf("127.0.0.1 reached %s, want a", got)
	}
	c := dialAs(t, g, user, "127.0.0.2")
	if got := on(t, c, "a", "b"); got != "b" {
		t.Errorf("127.0.0.2 reached %s, want b", got)
	}
	r, err := c.Retr("marker-b")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "b" {
		t.Errorf("download from 127.0.0.2: %q, %v", got, err)
	}
}

// TestPoolRoundRobin: a round-robin pool takes sessions in turn.
func TestPoolRoundRobin(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}}}, proxy.Routing{Default: "pool"}))
	count := map[string]int{}
	var prev string
	for i := range 4 {
		c := dialAs(t, g, user, "")
		got := on(t, c, "a", "b")
		if i > 0 && got == prev {
			t.Errorf("session %d went to %s again", i, got)
		}
		prev = got
		count[got]++
		c.Quit()
	}
	if count["a"] != 2 || count["b"] != 2 {
		t.Errorf("spread %v, want 2 and 2", count)
	}
}

// TestPoolLeastSessions: a least-sessions pool sends a new session to the
// member with the fewest running ones.
func TestPoolLeastSessions(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}, Balance: upstream.LeastSessions}}, proxy.Routing{Default: "pool"}))
	c1 := dialAs(t, g, user, "")
	first := on(t, c1, "a", "b")
	c2 := dialAs(t, g, user, "")
	second := on(t, c2, "a", "b")
	if first == second {
		t.Fatalf("two sessions on %s, the other member idle", first)
	}
	c2.Quit()
	waitUntil(t, "the sessions of "+second+" to fall to 0", func() bool {
		return metricValue(scrape(t, g), `ftpsgate_backend_sessions{backend="`+second+`"}`) == "0"
	})
	for i := range 2 { // whatever the round-robin counter says
		c := dialAs(t, g, user, "")
		if got := on(t, c, "a", "b"); got != second {
			t.Errorf("round %d: with %s busier, the new session went to %s", i, first, got)
		}
		c.Quit()
		waitUntil(t, "the sessions of "+second+" to fall to 0", func() bool {
			return metricValue(scrape(t, g), `ftpsgate_backend_sessions{backend="`+second+`"}`) == "0"
		})
	}
}

// frontDoor forwards a backend's control port: stopping it stops the
// backend for new connections (a dead listener) while the connections it
// carries go on, so that a running session outlives the stop.
type frontDoor struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFrontDoor(t *testing.T, target string) *frontDoor {
	f := &frontDoor{t: t, target: target, addr: "127.0.0.1:0"}
	f.start()
	f.addr = f.ln.Addr().String()
	t.Cleanup(func() {
		f.stop()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *frontDoor) start() {
	f.t.Helper()
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.ln = ln
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			be, err := net.Dial("tcp", f.target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, be)
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); _, _ = io.Copy(be, c); be.Close() }()
			go func() { defer f.wg.Done(); _, _ = io.Copy(c, be); c.Close() }()
		}
	}()
}

func (f *frontDoor) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
}

// TestFailover: a pool of two health-checked backends. Stopping one sends
// new sessions to the other within the check interval times the fall
// count; the change is logged once and the metrics follow; a session that
// was running on the stopped backend stays there and keeps working. With
// both stopped, /readyz says why and a new session gets 421; a backend
// that comes back takes sessions again.
func TestFailover(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	fa, fb := newFrontDoor(t, a.srv.Addr()), newFrontDoor(t, b.srv.Addr())
	health := proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: 100 * time.Millisecond, Rise: 1, Fall: 2}}
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: fa.addr, Health: health}, {Name: "b", Address: fb.addr, Health: health}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}}}, proxy.Routing{Default: "pool"}))
	ctx := context.Background()
	if err := g.srv.Ready(ctx); err != nil {
		t.Fatalf("ready at start: %v", err)
	}
	m := scrape(t, g)
	for _, n := range []string{"a", "b"} {
		if v := metricValue(m, `ftpsgate_backend_up{backend="`+n+`"}`); v != "1" {
			t.Errorf("backend_up of %s at start: %q", n, v)
		}
	}

	// A running session on a.
	var running *ftp.ServerConn
	for running == nil {
		c := dialAs(t, g, user, "")
		if on(t, c, "a", "b") == "a" {
			running = c
		} else {
			c.Quit()
		}
	}

	fa.stop()
	stopped := time.Now()
	waitUntil(t, "backend a down", func() bool {
		return metricValue(scrape(t, g), `ftpsgate_backend_up{backend="a"}`) == "0"
	})
	t.Logf("a was taken out %s after it stopped (interval 100ms, fall 2)", time.Since(stopped).Round(time.Millisecond))
	for i := range 4 {
		if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "b" {
			t.Errorf("session %d after a stopped went to %s", i, got)
		}
	}
	if err := g.srv.Ready(ctx); err != nil {
		t.Errorf("not ready with b up: %v", err)
	}
	// The running session was not moved: it still sees a's files, and
	// transfers on a.
	if got := on(t, running, "a", "b"); got != "a" {
		t.Errorf("the running session moved to %s", got)
	}
	if err := running.Stor("still-here", strings.NewReader("x")); err != nil {
		t.Errorf("upload on the running session: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.root, "still-here")); err != nil {
		t.Errorf("the running session's upload is not on a: %v", err)
	}
	// The health check logs the change after it takes effect: wait for
	// the line, then count.
	aDown := `"backend":"a","address":"` + fa.addr + `","error"`
	waitUntil(t, "a's backend-down line", func() bool { return strings.Contains(g.logs.String(), aDown) })
	if n := strings.Count(g.logs.String(), aDown); n != 1 {
		t.Errorf("%d backend-down lines for a, want 1", n)
	}
	if !strings.Contains(g.logs.String(), `"message":"backend down"`) {
		t.Error("no \"backend down\" line")
	}
	aUp := `"backend":"a","address":"` + fa.addr + `","message":"backend up"`
	aUps := strings.Count(g.logs.String(), aUp)

	fb.stop()
	waitUntil(t, "not ready", func() bool { return g.srv.Ready(ctx) != nil })
	if err := g.srv.Ready(ctx); !strings.Contains(err.Error(), "down") {
		t.Errorf("readiness reason %v", err)
	}
	if _, err := dialAsErr(g, user, ""); err == nil || !strings.Contains(err.Error(), "421") {
		t.Errorf("login with no backend up: %v, want 421", err)
	}

	fa.start()
	waitUntil(t, "ready again", func() bool { return g.srv.Ready(ctx) == nil })
	if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "a" {
		t.Errorf("with only a back, a session went to %s", got)
	}
	waitUntil(t, "a's backend-up line", func() bool { return strings.Count(g.logs.String(), aUp) == aUps+1 })
	running.Quit()
}

// waitUntil is waitFor with the description first.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, cond, what)
}

// TestPoolDialFailover: a pool member that died since its last health
// check (here: never checked) fails its dial; the session is dialled to
// the next member that is up instead of getting 421.
func TestPoolDialFailover(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	fa := newFrontDoor(t, a.srv.Addr())
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: fa.addr}, {Name: "b", Address: b.srv.Addr()}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}}}, proxy.Routing{Default: "pool"}))
	fa.stop()
	for i := range 3 { // round robin would send one of them to a
		if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "b" {
			t.Errorf("session %d went to %s", i, got)
		}
	}
	if !strings.Contains(g.logs.String(), "trying another member of the pool") {
		t.Error("no line for the failed dial")
	}
	// The failed dials counted no session on a; the three run on b.
	if ia, _ := backendInfo(t, g, "a"); ia.Sessions != 0 {
		t.Errorf("a, whose dials failed, counts %d sessions", ia.Sessions)
	}
	if ib, _ := backendInfo(t, g, "b"); ib.Sessions != 3 {
		t.Errorf("b counts %d sessions, want 3", ib.Sessions)
	}
	if v := metricValue(scrape(t, g), "ftpsgate_backend_dial_errors_total"); v == "0" || v == "" {
		t.Errorf("backend_dial_errors_total %q", v)
	}
}

// TestFailedDialChecksSoon: a session whose dial to a checked pool member
// fails (it died since its last check) brings that member's next check
// forward: with a 3 s interval and a fall of 2 it is taken out within
// about two fifths of the interval of the failures, not two intervals.
func TestFailedDialChecksSoon(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	fa := newFrontDoor(t, a.srv.Addr())
	health := proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: 3 * time.Second, Rise: 1, Fall: 2}}
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: fa.addr, Health: health}, {Name: "b", Address: b.srv.Addr(), Health: health}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}}}, proxy.Routing{Default: "pool"}))
	fa.stop()
	start := time.Now()
	for metricValue(scrape(t, g), `ftpsgate_backend_up{backend="a"}`) != "0" {
		if time.Since(start) > 2500*time.Millisecond {
			t.Fatalf("a still up %v after its dials began to fail (interval 3s, fall 2)", time.Since(start))
		}
		if got := on(t, dialAs(t, g, user, ""), "a", "b"); got != "b" {
			t.Fatalf("a session went to %s", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a was taken out %v after its dials began to fail", time.Since(start).Round(time.Millisecond))
}

// TestRouteByListener: sessions on the implicit listener go to b, those
// on the explicit one to the default a.
func TestRouteByListener(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Listeners: []string{"implicit"}, Target: "b"}}, Default: "a"}))
	if got := on(t, dial(t, g, "implicit"), "a", "b"); got != "b" {
		t.Errorf("implicit listener: %s, want b", got)
	}
	if got := on(t, dial(t, g, "explicit"), "a", "b"); got != "a" {
		t.Errorf("explicit listener: %s, want a", got)
	}
}

// slowDialer dials TCP after a pause: a backend far away, or slow to
// accept.
type slowDialer struct{ pause time.Duration }

func (d slowDialer) DialBackend(ctx context.Context, address string, _ netip.Addr) (net.Conn, error) {
	select {
	case <-time.After(d.pause):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", address)
}

// TestPoolLeastSessionsConcurrent: logins that arrive together while the
// backends are slow to dial spread over a least-sessions pool: a session
// counts on its member from the moment it is picked, not only once the
// dial is done (until then every login saw the same counts and all went
// to the same member).
func TestPoolLeastSessionsConcurrent(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGatewayWith(t, []proxy.Option{proxy.WithDialer(slowDialer{300 * time.Millisecond})}, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}},
		[]upstream.Pool{{Name: "pool", Members: []string{"a", "b"}, Balance: upstream.LeastSessions}}, proxy.Routing{Default: "pool"}))
	count := map[string]int{}
	count[on(t, dialAs(t, g, user, ""), "a", "b")]++ // one member busier
	const n = 4
	conns := make([]*ftp.ServerConn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); conns[i], errs[i] = dialAsErr(g, user, "") }()
	}
	wg.Wait()
	for i, c := range conns {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		t.Cleanup(func() { c.Quit() })
		count[on(t, c, "a", "b")]++
	}
	if d := count["a"] - count["b"]; d > 1 || d < -1 {
		t.Errorf("5 sessions spread %v over a least-sessions pool, want 3 and 2", count)
	}
}

// TestHOSTSyntax: HOST (RFC 7151) takes a host name or an address literal
// (IPv6 in brackets); anything else is 501 and the name is not kept (no
// control bytes, spaces or 4 KiB names in every log line of the session,
// nor in what the authenticator and the rules see). Case and a trailing
// dot do not matter to the rules. HOST after USER, and after the login,
// is 503.
func TestHOSTSyntax(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Hosts: []string{"ftp.example.com", "::1", "192.0.2.7"}, Target: "b"}}, Default: "a"}))
	for _, tc := range []struct {
		host string
		code int
		want string // the backend the session reaches
	}{
		{"FTP.Example.COM.", wire.StatusReady, "b"},
		{"[::1]", wire.StatusReady, "b"},
		{"192.0.2.7", wire.StatusReady, "b"},
		{"other.example.com", wire.StatusReady, "a"}, // no rule names it: the default
		{"ftp.example.com\tx", wire.StatusSyntaxErrorParameters, "a"},
		{"ftp.example.com x", wire.StatusSyntaxErrorParameters, "a"},
		{"ftp.example.com\x01", wire.StatusSyntaxErrorParameters, "a"},
		{"::1", wire.StatusReady, "b"}, // brackets are RFC 7151's form, but the address is unambiguous
		{"[ftp.example.com]", wire.StatusSyntaxErrorParameters, "a"},
		{"[::1", wire.StatusSyntaxErrorParameters, "a"},
		{"ftp.example.com:21", wire.StatusSyntaxErrorParameters, "a"},
		{"*.example.com", wire.StatusSyntaxErrorParameters, "a"},
		{"a..example.com", wire.StatusSyntaxErrorParameters, "a"},
		{strings.Repeat("a", 64) + ".example.com", wire.StatusSyntaxErrorParameters, "a"},
		{strings.Repeat("abcdefgh.", 30) + "com", wire.StatusSyntaxErrorParameters, "a"},
		{strings.Repeat("x", 4000), wire.StatusSyntaxErrorParameters, "a"},
	} {
		c := dialRaw(t, g.addr("explicit"), false)
		c.startTLS()
		c.send("HOST " + tc.host)
		if rep := c.read(); rep.Code != tc.code {
			t.Errorf("HOST %.40q: %d %s, want %d", tc.host, rep.Code, rep.Text(), tc.code)
		}
		c.do("USER "+user, wire.StatusNeedPassword)
		c.do("HOST ftp.example.com", wire.StatusBadSequence)
		c.do("PASS "+password, wire.StatusLoggedIn)
		c.do("SIZE marker-"+tc.want, wire.StatusFileStatus)
		c.do("HOST ftp.example.com", wire.StatusBadSequence)
		c.do("QUIT", wire.StatusClosing)
	}
	if n := strings.Count(g.logs.String(), strings.Repeat("x", 4000)); n > 1 {
		t.Errorf("the refused 4000-byte HOST name is in %d log lines, want only its command line", n)
	}
}

// silentBackend accepts connections and never greets: a hung backend.
func silentBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestReadyPoolWithHungMember: the default target is a pool whose first
// member hangs (it accepts and never greets) and whose second greets:
// the gateway is ready, and says so within a balancer's patience, not
// after the hung member's connect timeout (the members were probed one
// after the other, the hung one first).
func TestReadyPoolWithHungMember(t *testing.T) {
	b := startDemoBackend(t, "b", user)
	g := startGateway(t, withBackends(
		[]proxy.Backend{{Name: "hung", Address: silentBackend(t)}, {Name: "b", Address: b.srv.Addr()}},
		[]upstream.Pool{{Name: "pool", Members: []string{"hung", "b"}}}, proxy.Routing{Default: "pool"}))
	for i := range 2 { // the second time, the hung member's probe may still run
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := g.srv.Ready(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Ready %d with b up: %v", i, err)
		}
	}
}

// TestHugeBannerNotLogged: a backend whose banner is 100 KB of 421 lines
// fails the login with 421; its text is quoted in the session's log lines
// and events, cut short, not whole.
func TestHugeBannerNotLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn) {
		_, _ = io.WriteString(c, strings.Repeat("421-"+strings.Repeat("z", 1000)+"\r\n", 100)+"421 busy\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = ln.Addr().String() })
	if _, err := dialAsErr(g, user, ""); err == nil || !strings.Contains(err.Error(), "421") {
		t.Fatalf("login through a backend greeting 421: %v, want 421", err)
	}
	waitUntil(t, "the session's end line", func() bool { return strings.Contains(g.logs.String(), "session end") })
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}
