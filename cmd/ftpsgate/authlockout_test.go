package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/policy"
)

// flakyDirectory knows one user and is down while down is set.
type flakyDirectory struct{ down atomic.Bool }

func (*flakyDirectory) Name() string { return "ldap" }

func (d *flakyDirectory) Verify(_ context.Context, user, secret string) (auth.Identity, error) {
	if d.down.Load() {
		return auth.Identity{}, fmt.Errorf("ldap: dial: connection refused: %w", auth.ErrUnavailable)
	}
	if user != "erin" || secret != "pw" {
		return auth.Identity{}, auth.ErrDenied
	}
	return auth.Identity{User: user}, nil
}

// TestLockoutIgnoresUnavailableDirectory: logins that get 421 because the
// directory does not answer are not the user's failures: a directory
// outage of lock_after attempts must not lock the user out, during it or
// once it is over (TestLDAPGateway/directory_restart shows it with slapd).
// Real failures still count.
func TestLockoutIgnoresUnavailableDirectory(t *testing.T) {
	dir := &flakyDirectory{}
	g := &auth.Gateway{
		Providers:       []auth.Provider{dir},
		BackendPassword: "svc",
		Throttle: auth.LockoutThrottle(policy.NewLockout(policy.LockoutPolicy{
			Threshold: 2, Delay: time.Millisecond, MaxDelay: time.Second, LockAfter: 3, LockFor: time.Hour,
		})),
	}
	ctx := context.Background()
	login := func(pw string) error {
		_, err := g.Authenticate(ctx, auth.Request{User: "erin", Password: pw})
		return err
	}
	dir.down.Store(true)
	for i := range 12 {
		if err := login("pw"); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("attempt %d with the directory down: %v, want ErrUnavailable", i+1, err)
		}
	}
	dir.down.Store(false)
	if err := login("pw"); err != nil {
		t.Fatalf("login once the directory is back: %v (the outage locked the user)", err)
	}
	// Wrong passwords still lock: three of them, then the right one is
	// refused.
	for range 3 {
		if err := login("wrong"); !errors.Is(err, auth.ErrDenied) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if err := login("pw"); !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("after lock_after wrong passwords: %v, want locked (ErrDenied)", err)
	}
}
