package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"time"
)

// Errors an Authenticator returns.
var (
	// ErrDenied: wrong credentials, unknown or disabled user. The client
	// gets 530; the attempt counts towards a ban of its address.
	ErrDenied = errors.New("auth: login denied")
	// ErrUnavailable: the authenticator cannot decide now (its directory
	// does not answer). The client gets 421 and the session ends; the
	// attempt does not count against the client.
	ErrUnavailable = errors.New("auth: authenticator unavailable")
)

// Request is one login attempt at the edge.
type Request struct {
	User     string // as the client sent it in USER, checked by the gateway
	Password string // never logged
	ClientIP netip.Addr
	Listener string
	// ClientCert is the client's TLS certificate, if it showed one, and
	// ClientCertVerified says whether it chains to the configured client
	// CA. An unverified certificate proves something only through a pin.
	ClientCert         *x509.Certificate
	ClientCertVerified bool
	// Code is a one-time code the client sent with ACCT after a 332.
	Code string // never logged
	// Host is the RFC 7151 HOST the client named, if any.
	Host string
}

// Credentials are what the gateway logs in to the backend with.
type Credentials struct {
	User     string
	Password string // never logged
}

// Result is an Authenticator's answer to a Request that it did not refuse.
type Result struct {
	// Delegated: the backend decides, with Backend (the client's own
	// credentials for Passthrough).
	Delegated bool
	// User is the identity at the edge: the name the gateway logs, counts
	// (limits.max_sessions_per_user) and shows in the admin API.
	User string
	// Groups the user belongs to, for the policies that use them.
	Groups []string
	// Backend is what the gateway sends the backend as USER and PASS.
	Backend Credentials
	// Factors names what was checked ("password", "certificate", "totp"),
	// for the logs and the audit trail; empty when Delegated.
	Factors []string
	// PasswordExpires is when the edge password expires (zero: never or
	// unknown); Notice, when set, is added to the 230 reply (an expiry
	// warning).
	PasswordExpires time.Time
	Notice          string
}

// Authenticator decides logins at the edge. It must be safe for
// concurrent use and bound its own work by ctx.
type Authenticator interface {
	Authenticate(ctx context.Context, r Request) (Result, error)
}

// Passthrough leaves every login to the backend: the gateway logs in with
// the client's own credentials and the backend's answer is the outcome.
type Passthrough struct{}

// Authenticate delegates r to the backend.
func (Passthrough) Authenticate(_ context.Context, r Request) (Result, error) {
	return Result{Delegated: true, User: r.User, Backend: Credentials{User: r.User, Password: r.Password}}, nil
}
