package token

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/auth"
)

// FuzzVerify feeds arbitrary passwords to a Provider with a JWKS file: it
// never panics, answers ErrUnknownUser or ErrDenied (or accepts the one
// valid seed), and never puts the password in an error.
func FuzzVerify(f *testing.F) {
	k := newECKey(f, "k1")
	const iss = "https://sso.example.com"
	valid := k.sign(f, claimsFor(iss, aud, "alice", testNow))
	for _, s := range []string{
		valid,
		tamper(valid),
		"",
		"secret",
		"a.b.c",
		"eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.bnVsbA.",
		"eyJhbGciOiJFUzI1NiJ9.eyJleHAiOiIxZTk5OTkifQ.",
	} {
		f.Add("alice", s)
	}
	dir := f.TempDir()
	name := dir + "/jwks.json"
	writeFile(f, name, k)
	p, err := New(Config{Issuer: iss, Audience: aud, JWKSFile: name, Now: clock})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, user, secret string) {
		id, err := p.Verify(context.Background(), user, secret)
		switch {
		case err == nil:
			if id.User != user || id.Factor != auth.FactorToken {
				t.Fatalf("accepted %+v for %q", id, user)
			}
		case errors.Is(err, auth.ErrUnknownUser), errors.Is(err, auth.ErrDenied):
			if len(secret) >= 16 && strings.Contains(err.Error(), secret) {
				t.Fatalf("the error holds the password: %v", err)
			}
		default:
			t.Fatalf("error %v", err)
		}
	})
}
