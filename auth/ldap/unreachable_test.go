package ldap

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
)

// blackhole is a listening socket on 127.0.0.1 that never accepts: the
// kernel completes TCP handshakes into its backlog and nothing ever
// answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// closedPort is an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func timedVerify(ctx context.Context, p *Provider) (time.Duration, error) {
	start := time.Now()
	_, err := p.Verify(ctx, "alice", "alice-pw")
	return time.Since(start), err
}

// TestBlackholeUnavailable: a directory that accepts and never answers is
// ErrUnavailable after the timeouts, in every mode and transport.
func TestBlackholeUnavailable(t *testing.T) {
	addr := blackhole(t)
	const d = 300 * time.Millisecond
	for name, cfg := range map[string]Config{
		"ldap bind":       {URLs: []string{"ldap://" + addr}, AllowCleartext: true, BindDNTemplate: "uid=%s,dc=x"},
		"ldap search":     {URLs: []string{"ldap://" + addr}, AllowCleartext: true, BaseDN: "dc=x", BindDN: "cn=r,dc=x", BindPassword: "p"},
		"ldap anon":       {URLs: []string{"ldap://" + addr}, AllowCleartext: true, BaseDN: "dc=x"},
		"ldaps":           {URLs: []string{"ldaps://" + addr}, BindDNTemplate: "uid=%s,dc=x"},
		"starttls":        {URLs: []string{"ldap://" + addr}, StartTLS: true, BaseDN: "dc=x"},
		"two blackholes":  {URLs: []string{"ldaps://" + addr, "ldaps://" + blackhole(t)}, BindDNTemplate: "uid=%s,dc=x"},
		"refused, then …": {URLs: []string{"ldap://" + closedPort(t), "ldap://" + addr}, StartTLS: true, BindDNTemplate: "uid=%s,dc=x"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Timeout, cfg.DialTimeout = d, d
			p, err := New(cfg, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			took, err := timedVerify(context.Background(), p)
			if !errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			// Bounded by the timeouts (a few of them in a row), not a hang.
			if took > 10*time.Second {
				t.Errorf("took %s", took)
			}
			t.Logf("%s: %v", took, err)
		})
	}
}

// TestContextEndsVerify: the login's own deadline ends a Verify stuck on a
// silent directory long before the (long) operation timeout.
func TestContextEndsVerify(t *testing.T) {
	addr := blackhole(t)
	p, err := New(Config{URLs: []string{"ldap://" + addr}, AllowCleartext: true, BindDNTemplate: "uid=%s,dc=x",
		Timeout: time.Hour, DialTimeout: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	took, err := timedVerify(ctx, p)
	if !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if took > 10*time.Second {
		t.Errorf("took %s", took)
	}

	// Cancelled while waiting for a connection slot.
	p2, err := New(Config{URLs: []string{"ldap://" + addr}, AllowCleartext: true, BindDNTemplate: "uid=%s,dc=x", MaxConnections: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	p2.slots <- struct{}{} // the one slot is taken
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, err := timedVerify(ctx2, p2); !errors.Is(err, auth.ErrUnavailable) || !strings.Contains(err.Error(), "max_connections") {
		t.Errorf("waiting for a slot: %v", err)
	}
}

// TestEmptyPasswordNoContact: an empty password is denied without
// contacting the directory (here: one that would never answer).
func TestEmptyPasswordNoContact(t *testing.T) {
	for _, cfg := range []Config{
		{URLs: []string{"ldap://" + closedPort(t)}, AllowCleartext: true, BindDNTemplate: "uid=%s,dc=x"},
		{URLs: []string{"ldap://" + closedPort(t)}, AllowCleartext: true, BaseDN: "dc=x"},
	} {
		p, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Verify(context.Background(), "alice", ""); !errors.Is(err, auth.ErrDenied) {
			t.Errorf("got %v, want ErrDenied", err)
		}
		for _, u := range []string{"", " alice", "a\x00"} {
			if _, err := p.Verify(context.Background(), u, "pw"); !errors.Is(err, auth.ErrUnknownUser) {
				t.Errorf("%q: got %v, want ErrUnknownUser", u, err)
			}
		}
	}
}

func TestBindErrorMapping(t *testing.T) {
	ad := func(code string) error {
		return &goldap.Error{ResultCode: goldap.LDAPResultInvalidCredentials,
			Err: errors.New("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data " + code + ", v4563")}
	}
	for _, c := range []struct {
		err  error
		want error
	}{
		{ad("52e"), auth.ErrDenied},
		{ad("532"), auth.ErrExpired},
		{ad("773"), auth.ErrExpired},
		{ad("533"), auth.ErrDisabled},
		{ad("701"), auth.ErrDisabled},
		{ad("775"), auth.ErrDisabled},
		{&goldap.Error{ResultCode: goldap.LDAPResultInvalidCredentials, Err: errors.New("")}, auth.ErrDenied},
		{&goldap.Error{ResultCode: goldap.LDAPResultUnwillingToPerform, Err: errors.New("unauthenticated bind")}, auth.ErrDenied},
		{&goldap.Error{ResultCode: goldap.LDAPResultInvalidDNSyntax, Err: errors.New("")}, auth.ErrDenied},
		{&goldap.Error{ResultCode: goldap.LDAPResultBusy, Err: errors.New("")}, auth.ErrUnavailable},
		{&goldap.Error{ResultCode: goldap.LDAPResultUnavailable, Err: errors.New("")}, auth.ErrUnavailable},
		{&goldap.Error{ResultCode: goldap.LDAPResultOther, Err: errors.New("")}, auth.ErrUnavailable},
		{goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection timed out")), auth.ErrUnavailable},
		{errors.New("read: connection reset"), auth.ErrUnavailable},
	} {
		got := bindError("uid=a,dc=x", c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("%v: got %v, want %v", c.err, got, c.want)
		}
	}
}

// TestFailover: a server that refuses or never answers the TLS handshake
// hands over to the next URL, which is then tried first.
func TestFailover(t *testing.T) {
	s := startDirectory(t)
	cfg := bindConfig(s)
	cfg.DialTimeout = 300 * time.Millisecond
	cfg.URLs = []string{"ldaps://" + closedPort(t), "ldaps://" + blackhole(t), s.LDAPSURL}
	p := newProvider(t, cfg)
	wantIdentity(t, p, "alice", alicePW, "alice", "ops", "staff")
	if got := p.preferred.Load(); got != 2 {
		t.Errorf("preferred server %d, want 2", got)
	}
	wantIdentity(t, p, "bob", bobPW, "bob", "staff")
}
