package e2e

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// TestRouteByGroup: with edge authentication (auth.mode gateway) the
// groups the authenticator names choose the backend; everyone is mapped to
// the same backend account, so only the marker tells the backends apart.
func TestRouteByGroup(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	e := &edgeSetup{opts: []option{withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr()}, {Name: "b", Address: b.srv.Addr()}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Groups: []string{"finance"}, Target: "a"}}, Default: "b"})}}
	pw := e.secret("Edge-group-Pa55!")
	e.users = map[string]*local.User{
		"alice": {Password: hashPW(t, pw), Groups: []string{"staff", "finance"}},
		"bob":   {Password: hashPW(t, pw), Groups: []string{"staff"}},
	}
	g := startEdge(t, e)
	for name, want := range map[string]string{"alice": "a", "bob": "b"} {
		c, _ := edgeLogin(t, g, name, pw, wire.StatusLoggedIn)
		c.do("SIZE marker-"+want, wire.StatusFileStatus)
		c.do("QUIT", wire.StatusClosing)
	}
}

// TestHealthCheckTLSAndProbeLogin: a check of an explicit-TLS backend that
// requires TLS for logins does AUTH TLS, verifies the certificate and logs
// in with the probe account; a wrong probe password takes the backend down
// (and never reaches the log), and so does a certificate the gateway does
// not trust.
func TestHealthCheckTLSAndProbeLogin(t *testing.T) {
	good := startTLSBackend(t, proxy.TLSExplicit)
	badPass := startTLSBackend(t, proxy.TLSExplicit)
	untrusted := startTLSBackend(t, proxy.TLSExplicit)
	_, otherCA := selfSigned(t)
	const wrong = "Wrong-probe-Pa55"
	hc := func(pass string) proxy.HealthCheck {
		return proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: time.Second, Rise: 1, Fall: 1}, TLS: true, User: user, Password: pass}
	}
	g := startGateway(t, withBackends([]proxy.Backend{
		{Name: "good", Address: good.srv.Addr(), TLS: proxy.TLSExplicit, Trust: policy.BackendTLS{CAFile: good.caFile}, Health: hc(password)},
		{Name: "badpass", Address: badPass.srv.Addr(), TLS: proxy.TLSExplicit, Trust: policy.BackendTLS{CAFile: badPass.caFile}, Health: hc(wrong)},
		{Name: "untrusted", Address: untrusted.srv.Addr(), TLS: proxy.TLSExplicit, Trust: policy.BackendTLS{CAFile: otherCA},
			Health: proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: time.Second}, TLS: true}},
	}, nil, proxy.Routing{Default: "good"}))

	m := scrape(t, g)
	for name, want := range map[string]string{"good": "1", "badpass": "0", "untrusted": "0"} {
		if v := metricValue(m, `ftpsgate_backend_up{backend="`+name+`"}`); v != want {
			t.Errorf("backend_up of %s: %q, want %s", name, v, want)
		}
	}
	promtoolCheck(t, m)
	if err := g.srv.Ready(context.Background()); err != nil {
		t.Errorf("not ready: %v", err)
	}
	if !strings.Contains(good.logs.String(), "AUTH") {
		t.Error("the good backend saw no AUTH TLS from the check")
	}
	logs := g.logs.String()
	// Each backend's first result is one line, down ones with the reason.
	for _, want := range []string{`"backend":"good","address":"` + good.srv.Addr() + `","message":"backend up"`,
		`"backend":"badpass","address":"` + badPass.srv.Addr() + `","error":"backend badpass (` + badPass.srv.Addr() + `): probe login as ` + user + `: refused: 530`,
		`"backend":"untrusted","address":"` + untrusted.srv.Addr() + `","error":"backend untrusted (` + untrusted.srv.Addr() + `): TLS handshake: tls: failed to verify certificate`} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("the log has %d lines with %q, want 1", strings.Count(logs, want), want)
		}
	}
	if strings.Contains(logs, wrong) {
		t.Error("the probe password reached the log")
	}
	// A session goes to the good backend, over TLS.
	c := dialAs(t, g, user, "")
	if _, err := c.FileSize("nothing-here"); err == nil {
		t.Error("SIZE of a missing file succeeded")
	}
}

// TestBackendsVia: in a backends list, each backend's Via picks its
// tunnel: the health checks, the control and the data connections of the
// backend behind the tunnel all go through it, and those of the other
// backend through the default dialer.
func TestBackendsVia(t *testing.T) {
	a := startDemoBackend(t, "a", user)
	b := startDemoBackend(t, "b", user)
	def, tun := &countingDialer{}, &countingDialer{}
	health := proxy.HealthCheck{HealthConfig: upstream.HealthConfig{Interval: time.Hour}}
	g := startGatewayWith(t, []proxy.Option{proxy.WithDialer(def), proxy.WithTunnel("lan", tun)}, withBackends(
		[]proxy.Backend{{Name: "a", Address: a.srv.Addr(), Health: health}, {Name: "b", Address: b.srv.Addr(), Via: "lan", Health: health}}, nil,
		proxy.Routing{Rules: []upstream.Rule{{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, Target: "b"}}, Default: "a"}))
	if d, n := def.n.Load(), tun.n.Load(); d != 1 || n != 1 {
		t.Fatalf("first health checks: %d default dials, %d tunnel dials, want 1 and 1", d, n)
	}
	c := dialAs(t, g, user, "127.0.0.2")
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
	if d, n := def.n.Load(), tun.n.Load(); d != 1 || n != 3 {
		t.Fatalf("a session on b: %d default dials, %d tunnel dials, want 1 and 3 (control, data)", d, n)
	}
}
