package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// edgeAuth is a test authenticator that decides at the edge: "partner" with
// "edge-Pa55" is mapped to the backend's demo account; "down" makes it
// unavailable; everyone else is denied.
type edgeAuth struct{}

func (edgeAuth) Authenticate(_ context.Context, r auth.Request) (auth.Result, error) {
	switch {
	case r.User == "down":
		return auth.Result{}, auth.ErrUnavailable
	case r.User == "partner" && r.Password == "edge-Pa55":
		return auth.Result{User: "partner", Backend: auth.Credentials{User: user, Password: password}, Factors: []string{"password"}}, nil
	}
	return auth.Result{}, auth.ErrDenied
}

// TestAuthenticatorSeam: an authenticator that decides at the edge logs a
// partner in with backend credentials the partner never sees; a refusal is
// a 530 that never dials the backend and counts towards a ban; an
// unavailable authenticator is a 421; the edge user is counted before the
// backend is dialled.
func TestAuthenticatorSeam(t *testing.T) {
	g := startGatewayWith(t, []proxy.Option{proxy.WithAuthenticator(edgeAuth{})}, func(c *proxy.Config) {
		c.Limits = policy.Limits{MaxSessionsPerUser: 1}
	})
	dials := func() int { return strings.Count(g.logs.String(), "backend connected") }

	c := dialRaw(t, g.addr("implicit"), true)
	c.do("USER partner", wire.StatusUserOK)
	c.do("PASS wrong", wire.StatusNotLoggedIn)
	if n := dials(); n != 0 {
		t.Fatalf("a login denied at the edge dialled the backend %d times", n)
	}
	c.do("USER partner", wire.StatusUserOK)
	c.do("PASS edge-Pa55", wire.StatusLoggedIn)
	c.do("PWD", wire.StatusPathCreated) // the backend session is the demo account's
	if !strings.Contains(g.logs.String(), `"backend_user":"`+user+`"`) {
		t.Error("the login line does not name the backend account")
	}

	// One session per user, counted at the edge: the second is refused
	// before the backend is dialled.
	before := dials()
	d := dialRaw(t, g.addr("implicit"), true)
	d.do("USER partner", wire.StatusUserOK)
	d.do("PASS edge-Pa55", wire.StatusNotAvailable)
	if dials() != before {
		t.Error("a login over max_sessions_per_user dialled the backend")
	}

	e := dialRaw(t, g.addr("implicit"), true)
	e.do("USER down", wire.StatusUserOK)
	rep := e.do("PASS x", wire.StatusNotAvailable)
	if !strings.Contains(rep.Text(), "cannot be checked") {
		t.Errorf("unavailable authenticator: %q", rep.Text())
	}
	if strings.Contains(g.logs.String(), "edge-Pa55") {
		t.Error("a password reached the log")
	}
}
