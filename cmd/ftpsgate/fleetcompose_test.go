package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/internal/testredis"
)

// TestFleetComposeSharesAuthState: two gateways composed with the same
// fleet section share the fleet's admission and ban list, the used TOTP
// codes (a code used on one is refused on the other) and the per-user
// lockout's failures and lock.
func TestFleetComposeSharesAuthState(t *testing.T) {
	srv := testredis.Start(t)
	users := authUsersFile(t)
	compose2 := func(name string) *composed {
		text := goodConfig + `
auth:
  mode: gateway
  providers: [local]
  local: {users_file: ` + users + `, watch_interval: 0s}
  groups: [{name: partners, factors: [password, totp]}]
  lockout: {threshold: 2, lock_after: 2}
fleet:
  redis: {addresses: ["` + srv.Addr + `"]}
  replica: ` + name + "\n"
		cfg, err := loadFile(writeConfig(t, text))
		if err != nil {
			t.Fatal(err)
		}
		d, err := compose(context.Background(), cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.auth.close(); d.closeFleet() })
		if _, ok := d.gate.(*fleet.Admission); !ok || d.fleetBans == nil {
			t.Fatalf("%s: not composed with the fleet: %T", name, d.gate)
		}
		return d
	}
	a, b := compose2("a"), compose2("b")
	ctx := context.Background()
	code, err := totp.Code("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.auth.auth.Authenticate(ctx, auth.Request{User: "alice", Password: "Alice-Pa55word!", Code: code}); err != nil {
		t.Fatalf("alice on a: %v", err)
	}
	_, err = b.auth.auth.Authenticate(ctx, auth.Request{User: "alice", Password: "Alice-Pa55word!", Code: code})
	if !errors.Is(err, auth.ErrDenied) {
		t.Fatalf("the same code on b: %v, want a refusal (replayed)", err)
	}
	// bob: one wrong password on each gateway locks him on both.
	for _, d := range []*composed{a, b} {
		if _, err := d.auth.auth.Authenticate(ctx, auth.Request{User: "bob", Password: "wrong"}); !errors.Is(err, auth.ErrDenied) {
			t.Fatal(err)
		}
	}
	for i, d := range []*composed{a, b} {
		_, err := d.auth.auth.Authenticate(ctx, auth.Request{User: "bob", Password: "Bob-Pa55word!"})
		if auth.DenialReason(err) != "user temporarily locked after failed logins" {
			t.Fatalf("gateway %d: bob after two failures over two gateways: %v, want locked", i, err)
		}
	}
}
