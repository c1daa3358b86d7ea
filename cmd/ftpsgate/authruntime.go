package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/ldap"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/token"
	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/policy"
)

// authRuntime is the authenticator cmdRun built, and what SIGHUP and
// shutdown need of it.
type authRuntime struct {
	auth    auth.Authenticator
	local   *local.Store // nil without the local provider
	closers []io.Closer
}

// Reload reloads what has files behind it (the users file), on SIGHUP.
func (r *authRuntime) Reload() error {
	if r.local == nil {
		return nil
	}
	return r.local.Reload()
}

// close releases the providers' connections.
func (r *authRuntime) close() {
	for _, c := range r.closers {
		_ = c.Close()
	}
}

// newAuthenticator builds the authenticator a checked auth section
// describes; ctx bounds the users file's watcher.
func newAuthenticator(ctx context.Context, a *authSetup, log zerolog.Logger) (*authRuntime, error) {
	if !a.gateway() {
		return &authRuntime{auth: auth.Passthrough{}}, nil
	}
	rt := &authRuntime{}
	g := &auth.Gateway{
		Profiles: nil, Groups: a.groups, DefaultFactors: a.defaultFactors,
		Codes:       &totp.Verifier{Replay: a.replay},
		Throttle:    a.throttle(),
		BackendUser: a.backendUser, BackendPassword: a.backendPass, ForwardPassword: a.forward,
	}
	fail := func(err error) (*authRuntime, error) {
		rt.close()
		return nil, err
	}
	for _, name := range a.providers {
		switch name {
		case provLocal:
			st, err := local.Open(*a.local, log.With().Str("component", "users").Logger())
			if err != nil {
				return fail(fmt.Errorf("auth.local: %w", err))
			}
			rt.local = st
			g.Providers = append(g.Providers, st)
			g.Profiles = st
			g.Burn = func(ctx context.Context) { _ = st.Burn(ctx) }
			g.WarnBefore = a.local.Policy.WarnBefore
			if a.watchInterval > 0 {
				go st.Watch(ctx, a.watchInterval)
			}
		case provLDAP:
			p, err := ldap.New(*a.ldap, log.With().Str("component", "ldap").Logger())
			if err != nil {
				return fail(fmt.Errorf("auth.ldap: %w", err))
			}
			rt.closers = append(rt.closers, p)
			g.Providers = append(g.Providers, p)
		case provToken:
			p, err := token.New(*a.token)
			if err != nil {
				return fail(fmt.Errorf("auth.token: %w", err))
			}
			rt.closers = append(rt.closers, p)
			g.Providers = append(g.Providers, p)
		default:
			return fail(errors.New("auth.providers: unknown provider " + name))
		}
	}
	rt.auth = g
	return rt, nil
}

// throttle is the per-user lockout: the local one, under a fleet's when
// there is one.
func (a *authSetup) throttle() auth.Throttle {
	local := auth.LockoutThrottle(policy.NewLockout(a.lockout))
	if a.shareLockout != nil {
		return a.shareLockout(local)
	}
	return local
}
