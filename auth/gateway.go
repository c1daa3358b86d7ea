package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrCodeRequired: the first factor was right and the user needs a TOTP
// code that the client did not append to the password. The session answers
// 332 and expects the code with ACCT (RFC 959's account step), then asks
// again with Request.Code set.
var ErrCodeRequired = errors.New("auth: one-time code required")

// Denial is a refused login with its reason, for the log line and the
// event. It unwraps to ErrDenied (or ErrExpired), so callers that only
// need the reply test with errors.Is. The reason never holds a secret.
type Denial struct {
	Reason string // e.g. "wrong password", "unknown user", "replayed totp"
	Err    error  // ErrDenied or ErrExpired, possibly wrapping the provider's error
}

func (d *Denial) Error() string { return "auth: " + d.Reason + ": " + d.Err.Error() }
func (d *Denial) Unwrap() error { return d.Err }

// deny returns a Denial of reason wrapping err (ErrDenied when nil).
func deny(reason string, err error) error {
	if err == nil {
		err = ErrDenied
	}
	if !errors.Is(err, ErrDenied) && !errors.Is(err, ErrExpired) {
		err = fmt.Errorf("%w: %w", ErrDenied, err)
	}
	return &Denial{Reason: reason, Err: err}
}

// DenialReason is the reason of a refused login, or "" when err is none.
func DenialReason(err error) string {
	var d *Denial
	if errors.As(err, &d) {
		return d.Reason
	}
	return ""
}

// CodeVerifier checks one-time codes (package auth/totp). Verify returns
// an error for a wrong, malformed or already used code.
type CodeVerifier interface {
	Verify(user, secret, code string) error
}

// Outcome is how a login attempt ended, for the Throttle.
type Outcome int

const (
	// Abandoned: not decided (ErrCodeRequired, an unavailable provider, a
	// cancelled context). Counts nothing.
	Abandoned Outcome = iota
	// Succeeded: the login was accepted; the user's failures are forgotten.
	Succeeded
	// Failed: the login was refused (ErrDenied, ErrExpired). Counts.
	Failed
)

// ErrLocked is the error (or wraps it) of a Throttle's Begin that refuses
// an attempt unchecked: the user is locked, or the attempt would wait too
// long behind others. The Gateway denies it like a wrong password.
var ErrLocked = errors.New("auth: user temporarily locked after failed logins")

// Throttle slows and temporarily locks users after failed logins
// (policy.Lockout). Begin waits for the attempt's turn and delay within
// ctx and returns the Attempt, or an error: one that wraps ErrLocked, or
// ctx's.
type Throttle interface {
	Begin(ctx context.Context, user string) (Attempt, error)
}

// Attempt is a login attempt a Throttle let through. Done reports its
// outcome; the Gateway calls it exactly once.
type Attempt interface {
	Done(Outcome)
}

// Group is a group's defaults: what its members' logins need and the
// backend account they map to, when their own Profile does not say.
type Group struct {
	Name            string
	Factors         []string
	BackendUser     string
	BackendPassword string
}

// Gateway decides logins at the edge (auth.mode: gateway): it chains
// first-factor Providers, requires the further factors a user's profile or
// group names, and maps the user to backend credentials the client never
// sees. The zero values of the optional fields switch their feature off.
type Gateway struct {
	// Providers are asked in order; the first that knows the user decides.
	Providers []Provider
	// Profiles holds per-user factors, TOTP secrets, pins and mappings (the
	// local users file). Optional.
	Profiles Profiles
	// Groups give defaults by group, first match in order.
	Groups []Group
	// DefaultFactors apply when neither profile nor group names any
	// (default: one first factor, a password or a token).
	DefaultFactors []string
	// Codes checks TOTP codes; required when any login needs "totp".
	Codes CodeVerifier
	// Throttle counts failures per user and limits the attempts checked
	// at once. Optional.
	Throttle Throttle
	// Burn spends the work of one password check; it runs for a user no
	// provider knows, so unknown and known users cost the same. Optional.
	Burn func(ctx context.Context)
	// BackendUser and BackendPassword are the mapping when neither profile
	// nor group gives one: BackendUser "" keeps the edge name. With
	// ForwardPassword the client's first-factor password is sent instead of
	// BackendPassword (a migration aid for a backend that checks the same
	// directory; never done for a token).
	BackendUser     string
	BackendPassword string
	ForwardPassword bool
	// WarnBefore: a password that expires within it is announced in the
	// 230 reply.
	WarnBefore time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (g *Gateway) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// codeLen is the length of a TOTP code appended to the password.
const codeLen = 6

// Authenticate decides r. Every refusal is a *Denial (ErrDenied or
// ErrExpired); ErrCodeRequired asks for ACCT; other errors wrap
// ErrUnavailable.
func (g *Gateway) Authenticate(ctx context.Context, r Request) (Result, error) {
	if r.User == "" {
		return Result{}, deny("empty user name", nil)
	}
	if g.Throttle == nil {
		return g.decide(ctx, r)
	}
	at, err := g.Throttle.Begin(ctx, r.User)
	switch {
	case errors.Is(err, ErrLocked):
		// Locked users get the same answer as a wrong password; the
		// provider is not asked, so a locked directory account is not
		// pushed further.
		return Result{}, deny("user temporarily locked after failed logins", nil)
	case err != nil:
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// ErrCodeRequired, unavailable, cancelled (or a panic): not decided.
	outcome := Abandoned
	defer func() { at.Done(outcome) }()
	res, err := g.decide(ctx, r)
	switch {
	case err == nil:
		outcome = Succeeded
	case errors.Is(err, ErrDenied), errors.Is(err, ErrExpired):
		outcome = Failed
	}
	return res, err
}

// attempt is one reading of PASS: the first factor and the code.
type attempt struct {
	secret, code string
	split        bool // the code was cut off the end of PASS
}

// attempts reads PASS (and ACCT's code): with a code from ACCT, PASS is the
// first factor; otherwise a PASS ending in six digits may be password+code.
// Users known to need a code try the split first, everyone else the whole
// PASS first, so a directory never sees a wrong bind for a password that
// merely ends in digits.
func (g *Gateway) attempts(r Request) []attempt {
	whole := attempt{secret: r.Password}
	if r.Code != "" {
		whole.code = r.Code
		return []attempt{whole}
	}
	n := len(r.Password)
	if n <= codeLen || !allDigits(r.Password[n-codeLen:]) {
		return []attempt{whole}
	}
	split := attempt{secret: r.Password[:n-codeLen], code: r.Password[n-codeLen:], split: true}
	if p, ok := g.profile(r.User); ok && slices.Contains(p.Factors, FactorTOTP) {
		return []attempt{split, whole}
	}
	return []attempt{whole, split}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (g *Gateway) profile(user string) (Profile, bool) {
	if g.Profiles == nil {
		return Profile{}, false
	}
	return g.Profiles.Profile(user)
}

// disabled says whether the profiles mark user disabled (a profile-only
// entry can disable a user whom another provider authenticates), when
// Profiles can tell (local.Store).
func (g *Gateway) disabled(user string) bool {
	d, ok := g.Profiles.(interface{ Disabled(user string) bool })
	return ok && d.Disabled(user)
}

// factors are what user's login requires: the profile's, else the first
// group's that names any, else the default.
func (g *Gateway) factors(p Profile, groups []string) []string {
	if len(p.Factors) > 0 {
		return p.Factors
	}
	for _, gr := range g.Groups {
		if len(gr.Factors) > 0 && slices.Contains(groups, gr.Name) {
			return gr.Factors
		}
	}
	if len(g.DefaultFactors) > 0 {
		return g.DefaultFactors
	}
	// Nothing configured: whichever first factor the provider checked, so
	// that "providers: [token, local]" takes tokens and passwords alike.
	return []string{FactorPassword, FactorToken}
}

// needsFirstFactor says whether factors include a password or token.
func needsFirstFactor(factors []string) bool {
	return slices.Contains(factors, FactorPassword) || slices.Contains(factors, FactorToken)
}

func (g *Gateway) decide(ctx context.Context, r Request) (Result, error) {
	p, hasProfile := g.profile(r.User)
	// Certificate-only accounts (factors without a password) are decided
	// by the certificate (and a TOTP code, from ACCT or the end of PASS);
	// the rest of PASS is ignored and no provider is asked.
	if hasProfile && len(p.Factors) > 0 && !needsFirstFactor(p.Factors) {
		a := attempt{secret: r.Password, code: r.Code}
		if n := len(r.Password); a.code == "" && n >= codeLen && allDigits(r.Password[n-codeLen:]) {
			a.code = r.Password[n-codeLen:]
		}
		return g.finish(r, p, Identity{User: r.User, Provider: "profile"}, nil, a)
	}
	var firstErr error
	atts := g.attempts(r)
	for _, a := range atts {
		id, err := g.first(ctx, r.User, a.secret)
		if err == nil {
			if g.disabled(r.User) || g.disabled(id.User) {
				return Result{}, deny("account disabled", ErrDisabled)
			}
			if id.User != r.User {
				// The provider's spelling is who logs in (a directory
				// matches names without regard to case): the entry of
				// that name applies, whatever case the client sent.
				if pc, ok := g.profile(id.User); ok {
					p = pc
				}
			}
			factors := g.factors(p, id.Groups)
			if a.split && !slices.Contains(factors, FactorTOTP) {
				// The digits were part of a wrong password after all.
				if firstErr == nil {
					firstErr = deny("wrong password", nil)
				}
				continue
			}
			return g.finish(r, p, id, factors, a)
		}
		if !errors.Is(err, ErrDenied) && !errors.Is(err, ErrUnknownUser) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrDisabled) {
			return Result{}, err
		}
		if firstErr == nil || errors.Is(firstErr, ErrUnknownUser) {
			firstErr = err
		}
		if errors.Is(err, ErrExpired) {
			break
		}
	}
	switch {
	case errors.Is(firstErr, ErrUnknownUser):
		// One burn per reading of PASS: a known user's wrong password is
		// checked as often.
		for range atts {
			if g.Burn != nil {
				g.Burn(ctx)
			}
		}
		return Result{}, deny("unknown user", nil)
	case errors.Is(firstErr, ErrExpired):
		return Result{}, deny("password expired", firstErr)
	case errors.Is(firstErr, ErrDisabled):
		return Result{}, deny("account disabled", firstErr)
	case DenialReason(firstErr) != "":
		return Result{}, firstErr
	}
	return Result{}, deny("wrong password", firstErr)
}

// first asks the providers in order for the first factor.
func (g *Gateway) first(ctx context.Context, user, secret string) (Identity, error) {
	for _, pr := range g.Providers {
		id, err := pr.Verify(ctx, user, secret)
		if errors.Is(err, ErrUnknownUser) {
			continue
		}
		if err != nil {
			return Identity{}, err
		}
		if id.Provider == "" {
			id.Provider = pr.Name()
		}
		if id.User == "" {
			id.User = user
		}
		if id.Factor == "" {
			id.Factor = FactorPassword
		}
		return id, nil
	}
	return Identity{}, ErrUnknownUser
}

// finish checks the factors beyond the first and builds the Result.
// factors nil means "compute from the profile and the identity's groups".
func (g *Gateway) finish(r Request, p Profile, id Identity, factors []string, a attempt) (Result, error) {
	if factors == nil {
		factors = g.factors(p, id.Groups)
	}
	checked := []string{}
	if id.Factor != "" && needsFirstFactor(factors) {
		if !slices.Contains(factors, id.Factor) {
			// A token where the user must give a password, or the reverse.
			return Result{}, deny("factor "+id.Factor+" not allowed for this user", nil)
		}
		checked = append(checked, id.Factor)
	}
	if slices.Contains(factors, FactorClientCert) {
		if reason := checkCert(r, p); reason != "" {
			return Result{}, deny(reason, nil)
		}
		checked = append(checked, FactorClientCert)
	}
	if slices.Contains(factors, FactorTOTP) {
		if p.TOTPSecret == "" {
			return Result{}, deny("totp required but not enrolled", nil)
		}
		if a.code == "" {
			return Result{}, ErrCodeRequired
		}
		if g.Codes == nil {
			return Result{}, fmt.Errorf("%w: no TOTP verifier configured", ErrUnavailable)
		}
		if err := g.Codes.Verify(id.User, p.TOTPSecret, a.code); err != nil {
			return Result{}, deny("wrong or replayed totp code", err)
		}
		checked = append(checked, FactorTOTP)
	}
	res := Result{User: id.User, Groups: id.Groups, Factors: checked, PasswordExpires: id.PasswordExpires}
	res.Backend = g.mapping(p, id, a)
	if res.Backend.User == "" {
		return Result{}, fmt.Errorf("%w: no backend account for %q", ErrUnavailable, id.User)
	}
	if !id.PasswordExpires.IsZero() && g.WarnBefore > 0 {
		if left := id.PasswordExpires.Sub(g.now()); left <= g.WarnBefore {
			res.Notice = fmt.Sprintf("Your password expires in %d day(s); change it before %s.",
				int(left.Hours()/24)+1, id.PasswordExpires.UTC().Format("2006-01-02"))
		}
	}
	return res, nil
}
