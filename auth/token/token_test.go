package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const aud = "ftpsgate"

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clock() time.Time { return testNow }

// movingClock starts at testNow and moves when told.
type movingClock struct{ d atomic.Int64 }

func (c *movingClock) Now() time.Time          { return testNow.Add(time.Duration(c.d.Load())) }
func (c *movingClock) Advance(d time.Duration) { c.d.Add(int64(d)) }

// newDiscovering returns a Provider using is by discovery over https,
// trusting it through ca_file.
func newDiscovering(t *testing.T, is *testIssuer, edit func(*Config)) *Provider {
	t.Helper()
	cfg := Config{Issuer: is.srv.URL, Audience: aud, Discovery: true, CAFile: writeCA(t, is.srv), Now: clock}
	if edit != nil {
		edit(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func verify(p *Provider, user, tok string) (auth.Identity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Verify(ctx, user, tok)
}

// settled calls f until it gives something else than a denied signature,
// for at most 2s. go-oidc's RemoteKeySet clears its finished fetch only
// after the caller got its result, so a fetch right after another may
// briefly be answered with the previous one's keys.
func settled(f func() error) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := f()
		if !errors.Is(err, auth.ErrDenied) || !strings.Contains(err.Error(), "signature") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantErr(t *testing.T, err, want error, reason string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if reason != "" && !strings.Contains(err.Error(), reason) {
		t.Fatalf("error %q does not say %q", err, reason)
	}
}

func TestVerifyValid(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, nil)
	tok := k.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))
	id, err := verify(p, "alice", tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || id.Provider != "token" || id.Factor != auth.FactorToken || strings.Join(id.Groups, ",") != "partners,uploads" {
		t.Fatalf("identity %+v", id)
	}
	if p.Name() != "token" {
		t.Fatal(p.Name())
	}
	// The keys are cached: a second token costs no request.
	if _, err := verify(p, "alice", tok); err != nil {
		t.Fatal(err)
	}
	if d, j := is.discoveryHits.Load(), is.jwksHits.Load(); d != 1 || j != 1 {
		t.Fatalf("%d discovery and %d JWKS requests, want 1 each", d, j)
	}
}

func TestVerifyES256AndSubClaim(t *testing.T) {
	k := newECKey(t, "ec1")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, func(c *Config) { c.UserClaim = "sub"; c.GroupsClaim = "roles" })
	c := claimsFor(is.srv.URL, aud, "bob", testNow)
	c["roles"] = []string{"admin"}
	id, err := verify(p, "id-bob", k.sign(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "id-bob" || len(id.Groups) != 1 || id.Groups[0] != "admin" {
		t.Fatalf("identity %+v", id)
	}
}

// TestVerifyDenied: every JWT that fails a check is ErrDenied with the
// reason, and the error never holds the token.
func TestVerifyDenied(t *testing.T) {
	k := newRSAKey(t, "k1")
	other := newRSAKey(t, "k1") // same kid, other key
	stranger := newRSAKey(t, "k9")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, nil)
	iss := is.srv.URL

	with := func(edit func(map[string]any)) map[string]any {
		c := claimsFor(iss, aud, "alice", testNow)
		edit(c)
		return c
	}
	hs256 := func() string {
		// The issuer's public key, as PEM, used as an HMAC secret.
		pub, err := json.Marshal(k.jwk())
		if err != nil {
			t.Fatal(err)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return signPayload(t, s, claimsFor(iss, aud, "alice", testNow))
	}
	none := func() string {
		enc := base64.RawURLEncoding.EncodeToString
		h := enc([]byte(`{"alg":"none","typ":"JWT"}`))
		b, _ := json.Marshal(claimsFor(iss, aud, "alice", testNow))
		return h + "." + enc(b) + "."
	}
	tests := []struct {
		name   string
		user   string
		token  string
		reason string
	}{
		{"expired", "alice", k.sign(t, with(func(c map[string]any) { c["exp"] = testNow.Add(-time.Minute).Unix() })), "expired"},
		{"no exp", "alice", k.sign(t, with(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"not yet valid", "alice", k.sign(t, with(func(c map[string]any) { c["nbf"] = testNow.Add(time.Minute).Unix() })), "not valid before"},
		{"issued in the future", "alice", k.sign(t, with(func(c map[string]any) { c["iat"] = testNow.Add(time.Minute).Unix() })), "future"},
		{"wrong audience", "alice", k.sign(t, with(func(c map[string]any) { c["aud"] = "other-app" })), "audience"},
		{"wrong issuer", "alice", k.sign(t, with(func(c map[string]any) { c["iss"] = "https://evil.example" })), "different provider"},
		{"wrong signature", "alice", other.sign(t, claimsFor(iss, aud, "alice", testNow)), "signature"},
		{"unknown kid", "alice", stranger.sign(t, claimsFor(iss, aud, "alice", testNow)), "signature"},
		{"alg none", "alice", none(), "malformed jwt"},
		{"HS256 with the public key", "alice", hs256(), "malformed jwt"},
		{"user mismatch", "mallory", k.sign(t, claimsFor(iss, aud, "alice", testNow)), `for user "alice", not "mallory"`},
		{"no user claim", "alice", k.sign(t, with(func(c map[string]any) { delete(c, "preferred_username") })), "no preferred_username claim"},
		{"user claim not a string", "alice", k.sign(t, with(func(c map[string]any) { c["preferred_username"] = 7 })), "not a string"},
		{"user claim with CRLF", "alice\r\nSITE x", k.sign(t, with(func(c map[string]any) { c["preferred_username"] = "alice\r\nSITE x" })), "control characters"},
		{"groups not a list", "alice", k.sign(t, with(func(c map[string]any) { c["groups"] = map[string]int{"a": 1} })), "not a list of strings"},
		{"too large", "alice", k.sign(t, with(func(c map[string]any) { c["pad"] = strings.Repeat("x", 9000) })), "max_token_size"},
		{"tampered payload", "alice", tamper(k.sign(t, claimsFor(iss, aud, "alice", testNow))), "signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(p, tt.user, tt.token)
			wantErr(t, err, auth.ErrDenied, tt.reason)
			if strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), strings.Split(tt.token, ".")[1]) {
				t.Fatalf("the error holds the token: %v", err)
			}
		})
	}
}

// tamper changes the payload of a JWS, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	json.Unmarshal(b, &c)
	c["preferred_username"] = "root"
	b, _ = json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestVerifyLeeway(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, nil)
	c := claimsFor(is.srv.URL, aud, "alice", testNow)
	c["exp"] = testNow.Add(-20 * time.Second).Unix() // within 30s
	c["nbf"] = testNow.Add(20 * time.Second).Unix()
	c["iat"] = testNow.Add(20 * time.Second).Unix()
	if _, err := verify(p, "alice", k.sign(t, c)); err != nil {
		t.Fatal(err)
	}
	strict := newDiscovering(t, is, func(c *Config) { c.Leeway = -1 })
	_, err := verify(strict, "alice", k.sign(t, c))
	wantErr(t, err, auth.ErrDenied, "expired")
}

func TestVerifyIgnoreUser(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, func(c *Config) { c.IgnoreUser = true })
	id, err := verify(p, "anything", k.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
	if err != nil || id.User != "alice" {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

// TestVerifyNotAJWT: passwords go to the next provider, unread.
func TestVerifyNotAJWT(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, true, k)
	p := newDiscovering(t, is, nil)
	for _, s := range []string{"", "secret", "pass.word.x", "a.b.c", "a..c", "ab.cd.ef.gh", "eyJhbGciOiJSUzI1NiJ9..sig", "e30.e30.", "x y.z.w", strings.Repeat("a", 10000)} {
		_, err := verify(p, "alice", s)
		if err != auth.ErrUnknownUser {
			t.Errorf("%.20q: %v, want ErrUnknownUser", s, err)
		}
	}
	if n := is.discoveryHits.Load(); n != 0 {
		t.Fatalf("%d discovery requests for passwords", n)
	}
}

// TestKeyRotation: the issuer replaces its key; a token signed with the new
// key verifies (the cache is refreshed on the unknown kid once the last
// fetch is jwks_min_age old), the old key's tokens no longer do.
func TestKeyRotation(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newECKey(t, "k2")
	is := newTestIssuer(t, true, k1)
	clk := &movingClock{}
	p := newDiscovering(t, is, func(c *Config) { c.Now = clk.Now })
	if _, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))); err != nil {
		t.Fatal(err)
	}
	is.publish(k2)
	// Within jwks_min_age of the last fetch the JWKS is not fetched again.
	_, err := verify(p, "alice", k2.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
	wantErr(t, err, auth.ErrDenied, "signature")
	clk.Advance(DefaultJWKSMinAge)
	tok := k2.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))
	if err := settled(func() error { _, err := verify(p, "alice", tok); return err }); err != nil {
		t.Fatalf("token with the new key: %v", err)
	}
	if n := is.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS requests, want 2", n)
	}
	_, err = verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
	wantErr(t, err, auth.ErrDenied, "signature")
}

// TestForgedTokensSpareTheIssuer: tokens with unknown key ids cost the
// issuer at most one JWKS request per jwks_min_age.
func TestForgedTokensSpareTheIssuer(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, true, k)
	clk := &movingClock{}
	p := newDiscovering(t, is, func(c *Config) { c.Now = clk.Now })
	for i := range 50 {
		forged := newECKey(t, fmt.Sprintf("kid-%d", i))
		_, err := verify(p, "alice", forged.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrDenied, "signature")
		clk.Advance(time.Second)
	}
	// 50 seconds: the first fetch, then at most one per 10 seconds.
	if n := is.jwksHits.Load(); n < 1 || n > 6 {
		t.Fatalf("%d JWKS requests for 50 forged tokens in 50s", n)
	}
}

// TestIssuerDown: an issuer that does not answer is ErrUnavailable within
// the caller's deadline, also when the keys were cached and a token names a
// new one; an issuer that answers garbage is ErrUnavailable too.
func TestIssuerDown(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newRSAKey(t, "k2")
	t.Run("discovery hangs", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		is.hang.Store(true)
		p := newDiscovering(t, is, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := p.Verify(ctx, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrUnavailable, "discovery")
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("took %s", d)
		}
	})
	t.Run("http timeout", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		is.hang.Store(true)
		p := newDiscovering(t, is, func(c *Config) { c.HTTPTimeout = 200 * time.Millisecond })
		_, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrUnavailable, "")
	})
	t.Run("refused", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		p := newDiscovering(t, is, nil)
		is.srv.Close()
		_, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrUnavailable, "")
	})
	t.Run("keys hang after rotation", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		clk := &movingClock{}
		p := newDiscovering(t, is, func(c *Config) { c.Now = clk.Now })
		if _, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))); err != nil {
			t.Fatal(err)
		}
		is.hang.Store(true)
		clk.Advance(DefaultJWKSMinAge)
		tok := k2.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))
		err := settled(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := p.Verify(ctx, "alice", tok)
			return err
		})
		wantErr(t, err, auth.ErrUnavailable, "keys")
		// The cached key still works while the issuer is down.
		if _, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		p, err := New(Config{Issuer: is.srv.URL, Audience: aud, Discovery: true, Now: clock}) // system roots
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, err = verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrUnavailable, "certificate")
		if n := is.discoveryHits.Load(); n != 0 {
			t.Fatalf("%d discovery requests answered over an unverified connection", n)
		}
	})
	t.Run("garbage JWKS", func(t *testing.T) {
		is := newTestIssuer(t, true, k1)
		is.garbage.Store(true)
		p := newDiscovering(t, is, nil)
		_, err := verify(p, "alice", k1.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
		wantErr(t, err, auth.ErrUnavailable, "keys")
	})
}

func TestDiscoveryHTTP(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, false, k)
	cfg := Config{Issuer: is.srv.URL, Audience: aud, Discovery: true, Now: clock}
	err := cfg.Validate()
	if ke := confkey.List(err); len(ke) != 1 || ke[0].Key != "issuer" {
		t.Fatalf("http issuer without allow_http: %v", err)
	}
	cfg.AllowHTTP = true
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := verify(p, "alice", k.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow))); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPClientRefusesHTTP: the guard refuses plain http whatever URL the
// issuer names (a jwks_uri, a redirect).
func TestHTTPClientRefusesHTTP(t *testing.T) {
	k := newRSAKey(t, "k1")
	is := newTestIssuer(t, false, k)
	// Validate would refuse this issuer; the transport must too.
	p := &Provider{cfg: Config{Issuer: is.srv.URL, Audience: aud, Discovery: true, Now: clock}, discover: make(chan struct{}, 1)}
	c, err := newClient(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.client = c
	defer p.Close()
	_, err = verify(p, "alice", k.sign(t, claimsFor(is.srv.URL, aud, "alice", testNow)))
	wantErr(t, err, auth.ErrUnavailable, "must be https")
	if n := is.discoveryHits.Load(); n != 0 {
		t.Fatalf("%d requests over http", n)
	}
}

func TestJWKSFile(t *testing.T) {
	k1, k2 := newRSAKey(t, "k1"), newECKey(t, "k2")
	const iss = "https://sso.example.com/realms/partners"
	p, err := New(Config{Issuer: iss, Audience: aud, JWKSFile: writeJWKS(t, k1.jwk(), k2.jwk()), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, k := range []testKey{k1, k2} {
		if _, err := verify(p, "alice", k.sign(t, claimsFor(iss, aud, "alice", testNow))); err != nil {
			t.Fatalf("%s: %v", k.kid, err)
		}
	}
	_, err = verify(p, "alice", newRSAKey(t, "k1").sign(t, claimsFor(iss, aud, "alice", testNow)))
	wantErr(t, err, auth.ErrDenied, "signature")
	_, err = verify(p, "alice", k1.sign(t, claimsFor("https://other", aud, "alice", testNow)))
	wantErr(t, err, auth.ErrDenied, "different provider")

	// A private key in the file is refused.
	priv := jose.JSONWebKey{Key: k1.priv, KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	if _, err := New(Config{Issuer: iss, Audience: aud, JWKSFile: writeJWKS(t, priv)}); err == nil || !strings.Contains(err.Error(), "private") {
		t.Fatalf("private key accepted: %v", err)
	}
	sym := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}
	if _, err := New(Config{Issuer: iss, Audience: aud, JWKSFile: writeJWKS(t, sym)}); err == nil {
		t.Fatal("symmetric key accepted")
	}
	if _, err := New(Config{Issuer: iss, Audience: aud, JWKSFile: writeJWKS(t)}); err == nil {
		t.Fatal("empty key set accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	jwks := writeJWKS(t, newECKey(t, "k").jwk())
	ok := Config{Issuer: "https://sso.example.com", Audience: aud, Discovery: true}
	tests := []struct {
		name string
		edit func(*Config)
		keys string
	}{
		{"ok", func(c *Config) {}, ""},
		{"jwks file", func(c *Config) { c.Discovery = false; c.JWKSFile = jwks; c.Issuer = "urn:sso" }, ""},
		{"missing", func(c *Config) { *c = Config{} }, "issuer audience jwks_file"},
		{"both key sources", func(c *Config) { c.JWKSFile = jwks }, "jwks_file"},
		{"no such jwks file", func(c *Config) { c.Discovery = false; c.JWKSFile = "/nonexistent/jwks.json" }, "jwks_file"},
		{"http issuer", func(c *Config) { c.Issuer = "http://sso.example.com" }, "issuer"},
		{"relative issuer", func(c *Config) { c.Issuer = "sso.example.com" }, "issuer"},
		{"allow_http without discovery", func(c *Config) { c.Discovery = false; c.JWKSFile = jwks; c.AllowHTTP = true }, "allow_http"},
		{"alg none", func(c *Config) { c.Algorithms = []string{"RS256", "none"} }, "algorithms"},
		{"alg HS256", func(c *Config) { c.Algorithms = []string{"HS256"} }, "algorithms"},
		{"leeway", func(c *Config) { c.Leeway = time.Hour }, "leeway"},
		{"http timeout", func(c *Config) { c.HTTPTimeout = time.Hour }, "http_timeout"},
		{"token size", func(c *Config) { c.MaxTokenSize = 1 << 20 }, "max_token_size"},
		{"jwks min age", func(c *Config) { c.JWKSMinAge = 2 * time.Hour }, "jwks_min_age"},
		{"ca file", func(c *Config) { c.CAFile = "/nonexistent/ca.pem" }, "ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			var keys []string
			for _, e := range confkey.List(c.Validate()) {
				keys = append(keys, e.Key)
			}
			if got := strings.Join(keys, " "); got != tt.keys {
				t.Fatalf("keys %q, want %q (%v)", got, tt.keys, c.Validate())
			}
		})
	}
}
