package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// table is a first-factor provider over a fixed table, for the decision
// tests (the real providers have their own tests against real peers).
type table struct {
	name  string
	users map[string]string // user -> password
	err   map[string]error  // user -> error instead
	calls []string          // "user:secret" asked, in order
	mu    sync.Mutex
}

func (t *table) Name() string { return t.name }

func (t *table) Verify(_ context.Context, user, secret string) (Identity, error) {
	t.mu.Lock()
	t.calls = append(t.calls, user+":"+secret)
	t.mu.Unlock()
	if err, ok := t.err[user]; ok {
		return Identity{}, err
	}
	pw, ok := t.users[user]
	if !ok {
		return Identity{}, ErrUnknownUser
	}
	if pw != secret {
		return Identity{}, ErrDenied
	}
	id := Identity{User: user}
	if user == "carol" {
		id.Groups = []string{"partners"}
	}
	return id, nil
}

type profiles map[string]Profile

func (p profiles) Profile(u string) (Profile, bool) { v, ok := p[u]; return v, ok }

// codes accepts "123456" once per user.
type codes struct{ used map[string]bool }

func (c *codes) Verify(user, secret, code string) error {
	if secret == "" || code != "123456" {
		return errors.New("wrong code")
	}
	if c.used[user] {
		return errors.New("replayed code")
	}
	c.used[user] = true
	return nil
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "svc"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGatewayDecisions(t *testing.T) {
	cert, other := selfSigned(t), selfSigned(t)
	pin := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	type want struct {
		err      error // nil, ErrDenied, ErrExpired, ErrCodeRequired, ErrUnavailable
		reason   string
		user     string
		factors  []string
		backend  Credentials
		asked    []string // provider calls
		noticeOn bool
	}
	cases := []struct {
		name string
		req  Request
		want want
	}{
		{"password", Request{User: "alice", Password: "pw-alice"},
			want{user: "alice", factors: []string{"password"}, backend: Credentials{"alice", "svc"}, asked: []string{"alice:pw-alice"}}},
		{"wrong password", Request{User: "alice", Password: "nope"},
			want{err: ErrDenied, reason: "wrong password", asked: []string{"alice:nope"}}},
		{"unknown user", Request{User: "mallory", Password: "x"},
			want{err: ErrDenied, reason: "unknown user", asked: []string{"mallory:x", "dir:mallory:x"}}},
		{"chain falls through to the second provider", Request{User: "dave", Password: "pw-dave"},
			want{user: "dave", factors: []string{"password"}, backend: Credentials{"dave", "svc"}, asked: []string{"dave:pw-dave", "dir:dave:pw-dave"}}},
		{"disabled", Request{User: "dis", Password: "x"}, want{err: ErrDenied, reason: "account disabled", asked: []string{"dis:x"}}},
		{"expired", Request{User: "old", Password: "x"}, want{err: ErrExpired, reason: "password expired", asked: []string{"old:x"}}},
		{"directory down", Request{User: "down", Password: "x"}, want{err: ErrUnavailable, asked: []string{"down:x", "dir:down:x"}}},
		{"totp appended, split tried first for a known totp user", Request{User: "bob", Password: "pw-bob123456"},
			want{user: "bob", factors: []string{"password", "totp"}, backend: Credentials{"acme", "acme-secret"}, asked: []string{"bob:pw-bob"}}},
		{"totp missing asks for ACCT", Request{User: "bob", Password: "pw-bob"},
			want{err: ErrCodeRequired, asked: []string{"bob:pw-bob"}}},
		{"totp by ACCT", Request{User: "bob", Password: "pw-bob", Code: "123456"},
			want{user: "bob", factors: []string{"password", "totp"}, backend: Credentials{"acme", "acme-secret"}, asked: []string{"bob:pw-bob"}}},
		{"wrong totp", Request{User: "bob", Password: "pw-bob654321"},
			want{err: ErrDenied, reason: "wrong or replayed totp code", asked: []string{"bob:pw-bob"}}},
		{"group requires totp: whole password first, then the split", Request{User: "carol", Password: "pw-carol123456"},
			want{user: "carol", factors: []string{"password", "totp"}, backend: Credentials{"partner", "partner-secret"},
				asked: []string{"carol:pw-carol123456", "carol:pw-carol", "dir:carol:pw-carol123456", "dir:carol:pw-carol"}}},
		{"digits that belong to the password are not a code", Request{User: "erin", Password: "pw-erin123456"},
			want{user: "erin", factors: []string{"password"}, backend: Credentials{"erin", "svc"}, asked: []string{"erin:pw-erin123456"}}},
		{"digits cut off a password of a user without totp", Request{User: "alice", Password: "pw-alice123456"},
			want{err: ErrDenied, reason: "wrong password", asked: []string{"alice:pw-alice123456", "alice:pw-alice"}}},
		{"certificate only with pin", Request{User: "svc", Password: "", ClientCert: cert},
			want{user: "svc", factors: []string{"client_cert"}, backend: Credentials{"svc", "svc"}}},
		{"certificate only, wrong pin", Request{User: "svc", ClientCert: other},
			want{err: ErrDenied, reason: "client certificate does not match the user's pins"}},
		{"certificate only, none shown", Request{User: "svc"}, want{err: ErrDenied, reason: "client certificate required"}},
		{"password and CA-verified certificate", Request{User: "frank", Password: "pw-frank", ClientCert: other, ClientCertVerified: true},
			want{user: "frank", factors: []string{"password", "client_cert"}, backend: Credentials{"frank", "svc"}, asked: []string{"frank:pw-frank"}}},
		{"password and unverified certificate without pin", Request{User: "frank", Password: "pw-frank", ClientCert: other},
			want{err: ErrDenied, reason: "client certificate not verified by the client CA and no pin configured", asked: []string{"frank:pw-frank"}}},
		{"totp required but not enrolled", Request{User: "gina", Password: "pw-gina123456"},
			want{err: ErrDenied, reason: "totp required but not enrolled", asked: []string{"gina:pw-gina"}}},
		{"expiry notice", Request{User: "soon", Password: "pw-soon"},
			want{user: "soon", factors: []string{"password"}, backend: Credentials{"soon", "svc"}, asked: []string{"soon:pw-soon"}, noticeOn: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			local := &table{name: "local", users: map[string]string{
				"alice": "pw-alice", "bob": "pw-bob", "erin": "pw-erin123456", "frank": "pw-frank", "gina": "pw-gina", "soon": "pw-soon",
			}, err: map[string]error{"dis": ErrDisabled, "old": ErrExpired}}
			dir := &table{name: "dir", users: map[string]string{"dave": "pw-dave", "carol": "pw-carol"},
				err: map[string]error{"down": ErrUnavailable}}
			g := &Gateway{
				Providers: []Provider{local, prefixed{dir}},
				Profiles: profiles{
					"bob":   {Factors: []string{"password", "totp"}, TOTPSecret: "S", BackendUser: "acme", BackendPassword: "acme-secret"},
					"carol": {TOTPSecret: "S"},
					"gina":  {Factors: []string{"password", "totp"}},
					"svc":   {Factors: []string{"client_cert"}, Pins: [][32]byte{pin}, BackendPassword: "svc"},
					"frank": {Factors: []string{"password", "client_cert"}},
				},
				Groups:          []Group{{Name: "partners", Factors: []string{"password", "totp"}, BackendUser: "partner", BackendPassword: "partner-secret"}},
				Codes:           &codes{used: map[string]bool{}},
				BackendPassword: "svc",
				WarnBefore:      14 * 24 * time.Hour,
				Now:             func() time.Time { return now },
			}
			expiring := &expiringProvider{Provider: local, user: "soon", at: now.Add(3 * 24 * time.Hour)}
			g.Providers[0] = expiring
			res, err := g.Authenticate(context.Background(), tc.req)
			w := tc.want
			if w.err == nil && err != nil || w.err != nil && !errors.Is(err, w.err) {
				t.Fatalf("err = %v, want %v", err, w.err)
			}
			if got := DenialReason(err); got != w.reason {
				t.Errorf("reason = %q, want %q", got, w.reason)
			}
			asked := append(slices.Clone(local.calls), dir.prefixedCalls()...)
			if !slices.Equal(asked, w.asked) {
				t.Errorf("providers asked %q, want %q", asked, w.asked)
			}
			if err != nil {
				return
			}
			if res.Delegated || res.User != w.user || !slices.Equal(res.Factors, w.factors) || res.Backend != w.backend {
				t.Errorf("result = %+v, want user %q factors %q backend %+v", res, w.user, w.factors, w.backend)
			}
			if (res.Notice != "") != w.noticeOn {
				t.Errorf("notice = %q", res.Notice)
			}
		})
	}
}

// prefixed marks the second provider's calls.
type prefixed struct{ *table }

func (t *table) prefixedCalls() []string {
	out := []string{}
	for _, c := range t.calls {
		out = append(out, t.name+":"+c)
	}
	return out
}

// expiringProvider sets PasswordExpires for one user.
type expiringProvider struct {
	Provider
	user string
	at   time.Time
}

func (e *expiringProvider) Verify(ctx context.Context, user, secret string) (Identity, error) {
	id, err := e.Provider.Verify(ctx, user, secret)
	if err == nil && user == e.user {
		id.PasswordExpires = e.at
	}
	return id, err
}

func TestGatewayReplayedCode(t *testing.T) {
	g := &Gateway{
		Providers: []Provider{&table{name: "local", users: map[string]string{"bob": "pw"}}},
		Profiles:  profiles{"bob": {Factors: []string{"password", "totp"}, TOTPSecret: "S"}},
		Codes:     &codes{used: map[string]bool{}},
	}
	if _, err := g.Authenticate(context.Background(), Request{User: "bob", Password: "pw123456"}); err != nil {
		t.Fatal(err)
	}
	_, err := g.Authenticate(context.Background(), Request{User: "bob", Password: "pw123456"})
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("replayed code: %v", err)
	}
}

// throttle records what the Gateway asks and reports; err is Begin's.
type throttle struct {
	err      error
	begun    int
	outcomes []Outcome
}

func (t *throttle) Begin(context.Context, string) (Attempt, error) {
	if t.err != nil {
		return nil, t.err
	}
	t.begun++
	return attemptRec{t}, nil
}

type attemptRec struct{ t *throttle }

func (a attemptRec) Done(o Outcome) { a.t.outcomes = append(a.t.outcomes, o) }

// TestGatewayThrottle: every attempt the Throttle lets through is ended
// exactly once: a success, a failure (denied or expired), or abandoned
// (the 332 step, a provider that cannot be reached); a refused one is
// denied like a wrong password without asking a provider.
func TestGatewayThrottle(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		err     error // Begin's
		wantErr error
		reason  string
		want    []Outcome
		asked   bool
	}{
		{"success", Request{User: "alice", Password: "pw"}, nil, nil, "", []Outcome{Succeeded}, true},
		{"wrong password", Request{User: "alice", Password: "bad"}, nil, ErrDenied, "wrong password", []Outcome{Failed}, true},
		{"unknown user", Request{User: "nobody", Password: "bad"}, nil, ErrDenied, "unknown user", []Outcome{Failed}, true},
		{"expired", Request{User: "old", Password: "x"}, nil, ErrExpired, "password expired", []Outcome{Failed}, true},
		{"wrong totp", Request{User: "bob", Password: "pw654321"}, nil, ErrDenied, "wrong or replayed totp code", []Outcome{Failed}, true},
		{"code required (332)", Request{User: "bob", Password: "pw"}, nil, ErrCodeRequired, "", []Outcome{Abandoned}, true},
		{"directory down", Request{User: "down", Password: "x"}, nil, ErrUnavailable, "", []Outcome{Abandoned}, true},
		{"locked", Request{User: "alice", Password: "pw"}, fmt.Errorf("%w: until 12:00", ErrLocked), ErrDenied,
			"user temporarily locked after failed logins", nil, false},
		{"login timeout while waiting", Request{User: "alice", Password: "pw"}, context.DeadlineExceeded, ErrUnavailable, "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prov := &table{name: "local", users: map[string]string{"alice": "pw", "bob": "pw"},
				err: map[string]error{"old": ErrExpired, "down": ErrUnavailable}}
			th := &throttle{err: tt.err}
			burned := 0
			g := &Gateway{Providers: []Provider{prov}, Throttle: th, Burn: func(context.Context) { burned++ },
				Profiles: profiles{"bob": {Factors: []string{"password", "totp"}, TOTPSecret: "S"}},
				Codes:    &codes{used: map[string]bool{}}}
			_, err := g.Authenticate(context.Background(), tt.req)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if got := DenialReason(err); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
			if !slices.Equal(th.outcomes, tt.want) || len(th.outcomes) != th.begun {
				t.Errorf("outcomes %v after %d attempts, want %v", th.outcomes, th.begun, tt.want)
			}
			if asked := len(prov.calls) > 0; asked != tt.asked {
				t.Errorf("provider asked: %v", prov.calls)
			}
			if (burned == 1) != (tt.reason == "unknown user") {
				t.Errorf("burned %d", burned)
			}
		})
	}
}

func TestGatewayForwardPassword(t *testing.T) {
	g := &Gateway{Providers: []Provider{&table{name: "local", users: map[string]string{"alice": "pw"}}},
		BackendUser: "ext-%s", ForwardPassword: true}
	res, err := g.Authenticate(context.Background(), Request{User: "alice", Password: "pw"})
	if err != nil || res.Backend != (Credentials{"ext-alice", "pw"}) {
		t.Fatalf("res %+v err %v", res, err)
	}
}

// tokens is a provider that vouches for "robot" with the token "tok".
type tokens struct{}

func (tokens) Name() string { return "token" }
func (tokens) Verify(_ context.Context, user, secret string) (Identity, error) {
	if secret != "tok" {
		return Identity{}, ErrUnknownUser
	}
	return Identity{User: user, Factor: FactorToken}, nil
}

// TestGatewayDefaultFactorsToken: with no factors configured anywhere, a
// token is as good a first factor as a password (the token provider's
// documented use: "providers: [token, local]" and nothing else); a user or
// default that names [password] still refuses a token.
func TestGatewayDefaultFactorsToken(t *testing.T) {
	g := &Gateway{Providers: []Provider{tokens{}, &table{name: "local", users: map[string]string{"alice": "pw"}}}}
	res, err := g.Authenticate(context.Background(), Request{User: "robot", Password: "tok"})
	if err != nil || !slices.Equal(res.Factors, []string{FactorToken}) {
		t.Fatalf("token with the default factors: res %+v err %v", res, err)
	}
	if res, err := g.Authenticate(context.Background(), Request{User: "alice", Password: "pw"}); err != nil || !slices.Equal(res.Factors, []string{FactorPassword}) {
		t.Fatalf("password with the default factors: res %+v err %v", res, err)
	}
	g.DefaultFactors = []string{FactorPassword}
	if _, err := g.Authenticate(context.Background(), Request{User: "robot", Password: "tok"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("token with default_factors [password]: %v", err)
	}
	g.DefaultFactors = nil
	g.Profiles = profiles{"robot": {Factors: []string{FactorPassword}}}
	if _, err := g.Authenticate(context.Background(), Request{User: "robot", Password: "tok"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("token for a user whose factors are [password]: %v", err)
	}
}

// TestGatewayBurnPerAttempt: a PASS that ends in six digits is checked
// twice for a known user without TOTP (the whole, then without the
// digits); an unknown user must cost as much, or the time taken tells
// which names exist.
func TestGatewayBurnPerAttempt(t *testing.T) {
	prov := &table{name: "local", users: map[string]string{"alice": "pw"}}
	burned := 0
	g := &Gateway{Providers: []Provider{prov}, Burn: func(context.Context) { burned++ }}
	ctx := context.Background()
	for _, pass := range []string{"bad", "bad123456"} {
		before := len(prov.calls)
		_, _ = g.Authenticate(ctx, Request{User: "alice", Password: pass})
		checks := len(prov.calls) - before
		burned = 0
		_, _ = g.Authenticate(ctx, Request{User: "nobody", Password: pass})
		if burned != checks {
			t.Errorf("PASS %q: a known user costs %d password checks, an unknown one %d", pass, checks, burned)
		}
	}
}

// TestGatewayCertificateAndTOTP: a user whose factors are [client_cert,
// totp] sends the code as PASS or with ACCT (Request.Code); before, the
// code was never read and every attempt asked for it again.
func TestGatewayCertificateAndTOTP(t *testing.T) {
	cert := selfSigned(t)
	pin := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	g := &Gateway{
		Profiles: profiles{"svc": {Factors: []string{FactorClientCert, FactorTOTP}, TOTPSecret: "S", Pins: [][32]byte{pin}}},
		Codes:    &codes{used: map[string]bool{}}, BackendUser: "b",
	}
	ctx := context.Background()
	if _, err := g.Authenticate(ctx, Request{User: "svc", Password: "x", ClientCert: cert}); !errors.Is(err, ErrCodeRequired) {
		t.Fatalf("no code: %v", err)
	}
	res, err := g.Authenticate(ctx, Request{User: "svc", Password: "x", Code: "123456", ClientCert: cert})
	if err != nil || !slices.Equal(res.Factors, []string{FactorClientCert, FactorTOTP}) {
		t.Fatalf("code with ACCT: %+v %v", res, err)
	}
	g.Codes = &codes{used: map[string]bool{}}
	if _, err := g.Authenticate(ctx, Request{User: "svc", Password: "123456", ClientCert: cert}); err != nil {
		t.Fatalf("code as PASS: %v", err)
	}
	if _, err := g.Authenticate(ctx, Request{User: "svc", Password: "123456"}); !errors.Is(err, ErrDenied) {
		t.Fatalf("code without the certificate: %v", err)
	}
}

// foldingDirectory matches names without regard to case, as LDAP and
// Active Directory do, and vouches for the directory's own spelling.
type foldingDirectory struct{ users map[string]string }

func (foldingDirectory) Name() string { return "ldap" }

func (d foldingDirectory) Verify(_ context.Context, user, secret string) (Identity, error) {
	canon := strings.ToLower(user)
	pw, ok := d.users[canon]
	if !ok {
		return Identity{}, ErrUnknownUser
	}
	if pw != secret {
		return Identity{}, ErrDenied
	}
	return Identity{User: canon}, nil
}

// withDisabled adds local.Store's Disabled to a profiles map.
type withDisabled struct {
	profiles
	disabled map[string]bool
}

func (w withDisabled) Disabled(user string) bool { return w.disabled[user] }

// TestGatewayCanonicalNameProfile: a directory user who sends her name in
// another case is still the user her entry describes: its factors, mapping
// and disabled flag apply. They were looked up by the name as typed, so
// "ERIN" logged in without the code erin's entry asks for (found by
// test/interop TestLDAPGateway/groups).
func TestGatewayCanonicalNameProfile(t *testing.T) {
	g := &Gateway{
		Providers: []Provider{foldingDirectory{users: map[string]string{"erin": "pw", "gone": "pw", "plain": "pw"}}},
		Profiles: withDisabled{profiles{
			"erin": {Factors: []string{"password", "totp"}, TOTPSecret: "S", BackendUser: "erin-acct", BackendPassword: "x"},
			"gone": {},
		}, map[string]bool{"gone": true}},
		Codes:           &codes{used: map[string]bool{}},
		BackendPassword: "svc",
	}
	ctx := context.Background()
	for _, name := range []string{"erin", "ERIN", "Erin"} {
		if _, err := g.Authenticate(ctx, Request{User: name, Password: "pw"}); !errors.Is(err, ErrCodeRequired) {
			t.Errorf("%s without a code: %v, want ErrCodeRequired", name, err)
		}
	}
	res, err := g.Authenticate(ctx, Request{User: "ERIN", Password: "pw123456"})
	if err != nil || res.User != "erin" || res.Backend != (Credentials{"erin-acct", "x"}) || !slices.Equal(res.Factors, []string{"password", "totp"}) {
		t.Errorf("ERIN with the code: %+v, %v", res, err)
	}
	if _, err := g.Authenticate(ctx, Request{User: "GONE", Password: "pw"}); DenialReason(err) != "account disabled" {
		t.Errorf("a disabled entry under another spelling: %v", err)
	}
	if res, err := g.Authenticate(ctx, Request{User: "PLAIN", Password: "pw"}); err != nil || res.User != "plain" || res.Backend.User != "plain" {
		t.Errorf("a user without an entry: %+v, %v", res, err)
	}
}
