package proxy

import (
	"slices"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
)

// TestWarnings: the safe configuration warns of nothing; each weakening
// setting is named by its key.
func TestWarnings(t *testing.T) {
	safe := Config{
		Listeners: []Listener{{Name: "e", TLS: TLSExplicit}, {Name: "i", TLS: TLSImplicit}},
		TLS:       policy.TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", RequireProtectedData: true},
		Limits:    policy.Limits{MaxSessionsPerIP: 64, MaxPreLoginPerIP: 16, MaxPassivePerIP: 5},
		Passive:   nat.Config{Ports: nat.PortRange{Low: 50000, High: 50019}},
	}
	if ws := safe.Warnings(); len(ws) != 0 {
		t.Fatalf("safe configuration warns: %v", ws)
	}
	weak := safe
	weak.Listeners = []Listener{{Name: "e", TLS: TLSExplicit, AllowCleartext: true}}
	weak.TLS = policy.TLSConfig{ClientCertUser: policy.CertUserCN, ClientCertUserCaseInsensitive: true, DataSessionReuse: policy.ReuseOptional}
	weak.Backend = Backend{TLS: TLSExplicit, Trust: policy.BackendTLS{InsecureSkipVerify: true}}
	weak.Login.AllowAnonymous = true
	weak.ActiveEnabled = true
	weak.Limits = policy.Limits{}
	weak.Bans.KeepSessions = true
	weak.Timeouts.DataIdle = time.Hour
	var keys []string
	for _, w := range weak.Warnings() {
		keys = append(keys, w.Key)
	}
	want := []string{
		"listeners[0].require_tls", "tls.cert_file", "tls.require_protected_data", "tls.data_session_reuse",
		"tls.client_cert_user_case_insensitive", "backend.insecure_skip_verify", "policy.allow_anonymous", "active.enabled",
		"limits.max_sessions_per_ip", "limits.max_prelogin_per_ip", "limits.max_passive_per_ip", "timeouts.data_idle", "bans.end_sessions",
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("warnings for %v\nwant %v", keys, want)
	}
}

// TestWarningProbeInClear: a probe login on a plain backend sends its
// password in clear at every check; on a TLS backend it does not.
func TestWarningProbeInClear(t *testing.T) {
	c := Config{Backend: Backend{TLS: TLSNone, Health: HealthCheck{User: "probe", Password: "x"}}}
	if !slices.ContainsFunc(c.Warnings(), func(w Warning) bool { return w.Key == "backend.health.user" }) {
		t.Fatalf("no backend.health.user warning: %v", c.Warnings())
	}
	c.Backend.TLS = TLSExplicit
	if slices.ContainsFunc(c.Warnings(), func(w Warning) bool { return w.Key == "backend.health.user" }) {
		t.Fatal("a probe over TLS is warned of")
	}
}
