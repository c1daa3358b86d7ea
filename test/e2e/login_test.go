package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// TestCleartextLoginRefusedByDefault: an explicit listener configured with
// nothing but its name, address and mode refuses USER and PASS before AUTH
// TLS (530).
func TestCleartextLoginRefusedByDefault(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Listeners[0] = proxy.Listener{Name: "explicit", Address: "127.0.0.1:0", TLS: proxy.TLSExplicit}
	})
	c := dialRaw(t, g.addr("explicit"), false)
	c.do("USER "+user, wire.StatusNotLoggedIn)
	c.do("PASS "+password, wire.StatusNotLoggedIn)
	c.do("DELE x", wire.StatusNotLoggedIn)
	// The same listener logs in over TLS.
	c.startTLS()
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
}

// TestNoBackendBeforePassword: USER is answered at the edge; a session that
// never sends PASS never opens a backend connection (it would hold one of
// the backend's per-address slots).
func TestNoBackendBeforePassword(t *testing.T) {
	dials, port := countingListener(t, "127.0.0.1:0")
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = fmt.Sprintf("127.0.0.1:%d", port) })
	for i := 0; i < 3; i++ {
		c := dialRaw(t, g.addr("implicit"), true)
		c.do("USER "+user, wire.StatusUserOK)
		c.do("NOOP", wire.StatusCommandOK)
		c.do("USER other", wire.StatusUserOK)
	}
	time.Sleep(100 * time.Millisecond)
	if n := dials.Load(); n != 0 {
		t.Fatalf("the backend was dialled %d times by sessions that sent no password", n)
	}
}

// TestUserCountedAtLogin: with max_sessions_per_user 1, sessions that send
// USER without a password do not take the user's slot; logged-in sessions do.
func TestUserCountedAtLogin(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Limits = policy.Limits{MaxSessionsPerUser: 1}
	})
	for i := 0; i < 2; i++ {
		squatter := dialRaw(t, g.addr("implicit"), true)
		squatter.do("USER "+user, wire.StatusUserOK)
	}
	a := dialRaw(t, g.addr("implicit"), true)
	a.do("USER "+user, wire.StatusUserOK)
	a.do("PASS "+password, wire.StatusLoggedIn)
	b := dialRaw(t, g.addr("implicit"), true)
	b.do("USER "+user, wire.StatusUserOK)
	rep := b.do("PASS "+password, wire.StatusNotAvailable)
	if !strings.Contains(rep.Text(), "user") {
		t.Errorf("refusal %q does not say why", rep.Text())
	}
	if !strings.Contains(g.logs.String(), "too many sessions for this user") {
		t.Error("no log line for the refused login")
	}
}

// TestLoginDeadlineFromConnect: timeouts.login counts from connect, not from
// the last command: a session kept alive with NOOP but never logged in is
// closed with 421 once it is over.
func TestLoginDeadlineFromConnect(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Timeouts.Login = time.Second })
	c := dialRaw(t, g.addr("implicit"), true)
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		c.send("NOOP")
		rep := c.read()
		if rep.Code == wire.StatusNotAvailable {
			if d := time.Since(start); d < time.Second || d > 2*time.Second {
				t.Fatalf("421 after %s, want after the 1s login timeout", d)
			}
			if !strings.Contains(rep.Text(), "Login timeout") {
				t.Errorf("421 %q does not say why", rep.Text())
			}
			return
		}
		if rep.Code != wire.StatusCommandOK {
			t.Fatalf("NOOP: %d %s", rep.Code, rep.Text())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("a session kept alive with NOOP was never closed by the login timeout")
}

// TestPreLoginCapPerAddress: sessions that have not logged in are capped
// per client address; other addresses and logged-in sessions are not held
// back by it.
func TestPreLoginCapPerAddress(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Limits = policy.Limits{MaxPreLoginPerIP: 2}
	})
	a, rep := dialFrom(t, "127.0.0.11", g.addr("explicit"))
	if rep.Code != wire.StatusReady {
		t.Fatalf("first: %d", rep.Code)
	}
	if _, rep := dialFrom(t, "127.0.0.11", g.addr("explicit")); rep.Code != wire.StatusReady {
		t.Fatalf("second: %d", rep.Code)
	}
	_, rep = dialFrom(t, "127.0.0.11", g.addr("explicit"))
	if rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.Text(), "not logged in") {
		t.Fatalf("third pre-login session from one address: %d %q, want 421", rep.Code, rep.Text())
	}
	if _, rep := dialFrom(t, "127.0.0.12", g.addr("explicit")); rep.Code != wire.StatusReady {
		t.Fatalf("another address: %d", rep.Code)
	}
	// Once one of them logs in, its place is free again.
	a.startTLS()
	a.do("USER "+user, wire.StatusUserOK)
	a.do("PASS "+password, wire.StatusLoggedIn)
	if _, rep := dialFrom(t, "127.0.0.11", g.addr("explicit")); rep.Code != wire.StatusReady {
		t.Fatalf("after a login: %d, want 220", rep.Code)
	}
}
