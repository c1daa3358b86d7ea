package proxy

import (
	"fmt"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Warning is a setting that weakens one of the gateway's safe defaults. It
// is allowed, since some networks need it, but `ftpsgate validate` prints
// it and the gateway logs it at start-up, so that it is never a surprise.
type Warning struct {
	Key  string // the configuration key, e.g. "listeners[0].require_tls"
	Text string // what it weakens
}

func (w Warning) String() string { return w.Key + ": " + w.Text }

// Warnings lists the settings of c that weaken a safe default, in the
// order of the configuration file.
func (c Config) Warnings() []Warning {
	var ws []Warning
	add := func(key, text string) { ws = append(ws, Warning{key, text}) }
	for i, l := range c.Listeners {
		if l.AllowCleartext && l.TLS == TLSExplicit {
			add(fmt.Sprintf("listeners[%d].require_tls", i), "false: USER, PASS and every command may cross in clear before AUTH TLS")
		}
	}
	if c.TLS.CertFile == "" && c.TLS.KeyFile == "" {
		add("tls.cert_file", "empty: a self-signed certificate is generated at start; clients cannot verify the gateway")
	}
	if !c.TLS.RequireProtectedData {
		add("tls.require_protected_data", "false: clients may transfer files over clear data connections (PROT C)")
	}
	if c.TLS.DataSessionReuse == policy.ReuseOptional {
		add("tls.data_session_reuse", "optional: a data connection need not resume the client's TLS session; whoever reaches a leased passive port first from the client's address gets the data")
	}
	if c.TLS.ClientCertUser != policy.CertUserNone && c.TLS.ClientCertUserCaseInsensitive {
		add("tls.client_cert_user_case_insensitive", "true: a certificate for alice also logs in as ALICE or Alice, another account on a backend whose accounts are case-sensitive")
	}
	for i, b := range c.backendList() {
		if b.TLS != TLSNone && b.Trust.InsecureSkipVerify {
			add(c.backendKey(i)+".insecure_skip_verify", "true: the backend's certificate is not verified (lab use only)")
		}
		if b.TLS == TLSNone && b.Health.User != "" {
			add(c.backendKey(i)+".health.user", "set on a backend with tls: none: the probe account's password crosses to the backend in clear at every health check")
		}
	}
	if c.Login.AllowAnonymous {
		add("policy.allow_anonymous", "true: anonymous and ftp may log in")
	}
	if c.ActiveEnabled {
		add("active.enabled", "true: the gateway connects out to clients' PORT/EPRT addresses (its own address and ports >= 1024 only)")
	}
	if c.Limits.MaxSessionsPerIP == 0 {
		add("limits.max_sessions_per_ip", "0: one client address may open sessions up to limits.max_sessions")
	}
	if c.Limits.MaxPreLoginPerIP == 0 {
		add("limits.max_prelogin_per_ip", "0: one client address may hold sessions that never log in up to limits.max_sessions")
	}
	if n := c.Limits.MaxPassivePerIP; n == 0 || n >= c.Passive.Ports.Size() {
		add("limits.max_passive_per_ip", fmt.Sprintf("%d: one client address may lease every passive port and block data connections for everyone else", n))
	}
	if d := c.Timeouts.dataIdle(); d > 10*time.Minute {
		add("timeouts.data_idle", fmt.Sprintf("%s: a stalled transfer holds its passive port, its backend connection and up to about 0.75 MiB that long", d))
	}
	if c.Bans.KeepSessions {
		add("bans.end_sessions", "false: a banned address keeps its running sessions and transfers; a ban only refuses new connections")
	}
	return ws
}
