package auth

import (
	"context"
	"errors"
	"time"
)

// Errors a Provider returns besides ErrDenied and ErrUnavailable.
var (
	// ErrUnknownUser: the provider does not know the user; the next
	// provider in the chain is asked. When none knows the user the login
	// is denied exactly like a wrong password (same reply, same delay).
	ErrUnknownUser = errors.New("auth: unknown user")
	// ErrExpired: the password was right but has expired. The client gets
	// a 530 that says so.
	ErrExpired = errors.New("auth: password expired")
	// ErrDisabled: the account exists and is disabled. The client gets the
	// same 530 as for a wrong password; the log line says why.
	ErrDisabled = errors.New("auth: account disabled")
)

// Identity is what a Provider vouches for after checking a user's first
// factor (a password, or a token standing in for one).
type Identity struct {
	// User is the canonical edge name (the directory's spelling, the
	// token's claim).
	User string
	// Groups the user belongs to, as the provider knows them.
	Groups []string
	// Provider names the provider that decided ("local", "ldap", "token").
	Provider string
	// Factor names what was checked: "password" or "token".
	Factor string
	// PasswordExpires is when the password expires; zero when it does not
	// (or the provider does not know).
	PasswordExpires time.Time
}

// Provider checks a user's first factor. Providers are chained: the first
// that knows the user decides, with ErrDenied (wrong secret, disabled),
// ErrExpired, or an Identity; ErrUnknownUser hands the user to the next
// provider; ErrUnavailable (wrapped) means the provider cannot decide now.
//
// A Provider must be safe for concurrent use, bound its work by ctx, and
// never put the secret in an error or a log line.
type Provider interface {
	Name() string
	Verify(ctx context.Context, user, secret string) (Identity, error)
}

// Factor names, as configuration and the logs spell them.
const (
	FactorPassword   = "password"    // a password checked by a Provider
	FactorToken      = "token"       // an OAuth/OIDC access token in PASS
	FactorTOTP       = "totp"        // an RFC 6238 code
	FactorClientCert = "client_cert" // a pinned or CA-chained TLS client certificate
)

// Profile is what the gateway knows about an edge user beyond the first
// factor: what else the login needs and which backend account it maps to.
// The local users file holds one per user; groups in the configuration
// give defaults.
type Profile struct {
	// Factors the login requires, e.g. [password totp] or [client_cert];
	// empty means the configured default.
	Factors []string
	// TOTPSecret is the RFC 6238 shared secret, base32 (never logged).
	TOTPSecret string
	// Pins are SHA-256 digests of the SubjectPublicKeyInfo of the client
	// certificates the user may show.
	Pins [][32]byte
	// BackendUser and BackendPassword are the backend account the user maps
	// to; empty BackendUser means the edge name. The password is read from
	// a file or the environment when the profile is loaded, never from the
	// YAML itself.
	BackendUser     string
	BackendPassword string
}

// Profiles looks up the Profile of an edge user.
type Profiles interface {
	Profile(user string) (Profile, bool)
}
