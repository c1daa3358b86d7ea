package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/policy"
)

// slowProvider knows alice (password "pw"); a check takes 20ms; down makes
// it unreachable.
type slowProvider struct {
	running, peak atomic.Int32
	down          atomic.Bool
}

func (p *slowProvider) Name() string { return "slow" }

func (p *slowProvider) Verify(_ context.Context, user, secret string) (auth.Identity, error) {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for pk := p.peak.Load(); n > pk && !p.peak.CompareAndSwap(pk, n); pk = p.peak.Load() {
	}
	time.Sleep(20 * time.Millisecond)
	switch {
	case p.down.Load():
		return auth.Identity{}, auth.ErrUnavailable
	case user != "alice":
		return auth.Identity{}, auth.ErrUnknownUser
	case secret != "pw":
		return auth.Identity{}, auth.ErrDenied
	}
	return auth.Identity{User: user}, nil
}

// TestLockoutThrottleGateway: the gateway through the lockout adapter: 8
// parallel correct logins of one user all succeed (threshold at once, the
// rest after waiting their turn); an unreachable directory counts nothing;
// a lock is denied like a wrong password without asking the provider.
func TestLockoutThrottleGateway(t *testing.T) {
	prov := &slowProvider{}
	g := &auth.Gateway{Providers: []auth.Provider{prov}, BackendPassword: "svc",
		Throttle: auth.LockoutThrottle(policy.NewLockout(policy.LockoutPolicy{Threshold: 5, LockAfter: 5, LockFor: time.Minute}))}
	login := func(pw string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := g.Authenticate(ctx, auth.Request{User: "alice", Password: pw})
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- login("pw")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("parallel correct login: %v", err)
		}
	}
	if pk := prov.peak.Load(); pk > 5 {
		t.Errorf("%d checks at once, threshold 5", pk)
	}
	prov.down.Store(true)
	for range 10 {
		if err := login("pw"); !errors.Is(err, auth.ErrUnavailable) {
			t.Fatalf("directory down: %v", err)
		}
	}
	prov.down.Store(false)
	for range 4 {
		if err := login("bad"); !errors.Is(err, auth.ErrDenied) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if err := login("pw"); err != nil {
		t.Fatalf("the outage counted towards the lock: %v", err)
	}
	for range 5 {
		_ = login("bad")
	}
	prov.peak.Store(0)
	err := login("pw")
	if !errors.Is(err, auth.ErrDenied) || auth.DenialReason(err) != "user temporarily locked after failed logins" || prov.peak.Load() != 0 {
		t.Fatalf("locked: %v (provider asked: %v)", err, prov.peak.Load() != 0)
	}
}
