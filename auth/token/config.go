package token

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults and bounds of Config.
const (
	DefaultUserClaim    = "preferred_username"
	DefaultGroupsClaim  = "groups"
	DefaultLeeway       = 30 * time.Second
	MaxLeeway           = 5 * time.Minute
	DefaultHTTPTimeout  = 10 * time.Second
	MaxHTTPTimeout      = 2 * time.Minute
	DefaultMaxTokenSize = 8 << 10
	DefaultJWKSMinAge   = 10 * time.Second
	MaxJWKSMinAge       = time.Hour
	MaxMaxTokenSize     = 64 << 10

	// maxResponseSize bounds what the Provider reads from the issuer (the
	// discovery document, the JWKS) and from a JWKS file.
	maxResponseSize = 1 << 20
)

// DefaultAlgorithms are the signature algorithms accepted when
// Config.Algorithms is empty.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// allowedAlgorithms are the asymmetric JWS algorithms Config.Algorithms may
// name. "none" and HS256/384/512 are not among them: with a public key as
// the HMAC secret anyone could sign.
var allowedAlgorithms = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// Config configures the token Provider (the auth.token section). The zero
// value is not usable: Issuer, Audience and one of JWKSFile or Discovery are
// required.
type Config struct {
	// Issuer is the token issuer, compared byte for byte with iss. With
	// Discovery it is also the URL whose /.well-known/openid-configuration
	// names the JWKS, and must be https unless AllowHTTP.
	Issuer string
	// Audience must be among the token's aud: the identifier the issuer
	// uses for the gateway.
	Audience string
	// JWKSFile is a JSON Web Key Set file with the issuer's public keys,
	// read once by New. Exclusive with Discovery.
	JWKSFile string
	// Discovery fetches the issuer's keys from the jwks_uri of its
	// OpenID Connect discovery document (on the first token, then cached;
	// fetched again when a token names an unknown key). Exclusive with
	// JWKSFile.
	Discovery bool
	// AllowHTTP lets Discovery use plain http for the issuer and its JWKS
	// (for tests and labs). It weakens security: anyone on the path can
	// substitute keys and so mint tokens.
	AllowHTTP bool
	// CAFile is a PEM file of the CAs that sign the issuer's https
	// certificate. Empty: the system roots.
	CAFile string
	// UserClaim names the claim that holds the user name. Empty:
	// "preferred_username". "sub", "email" and others work.
	UserClaim string
	// GroupsClaim names the claim that lists the user's groups; a token
	// without it has no groups. Empty: "groups".
	GroupsClaim string
	// Algorithms are the JWS algorithms accepted. Empty: RS256, ES256.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat, at most 5m.
	// Zero: 30s. Negative: no leeway.
	Leeway time.Duration
	// HTTPTimeout bounds each request to the issuer, at most 2m. Zero: 10s.
	HTTPTimeout time.Duration
	// JWKSMinAge is how long a fetched JWKS is reused before a token with
	// an unknown key id may fetch it again, at most 1h: forged tokens then
	// cost the issuer at most one request per JWKSMinAge. Zero: 10s.
	JWKSMinAge time.Duration
	// MaxTokenSize is the longest token accepted, in bytes, at most 64 KiB.
	// Zero: 8 KiB.
	MaxTokenSize int
	// IgnoreUser accepts a token whatever name the client sent with USER
	// (the identity is the token's user claim). It weakens security: the
	// name in the logs before PASS may not be who logs in. False: USER must
	// equal the user claim.
	IgnoreUser bool

	// HTTPClient, if set, is used for the issuer (tests). Its Transport is
	// wrapped to bound what is read and to refuse http unless AllowHTTP;
	// HTTPTimeout replaces its Timeout when that is zero. Not a
	// configuration key.
	HTTPClient *http.Client
	// Now is the clock (tests). Nil: time.Now.
	Now func() time.Time
}

func (c Config) userClaim() string   { return or(c.UserClaim, DefaultUserClaim) }
func (c Config) groupsClaim() string { return or(c.GroupsClaim, DefaultGroupsClaim) }

func (c Config) algorithms() []string {
	if len(c.Algorithms) == 0 {
		return DefaultAlgorithms
	}
	return c.Algorithms
}

func (c Config) leeway() time.Duration {
	switch {
	case c.Leeway == 0:
		return DefaultLeeway
	case c.Leeway < 0:
		return 0
	}
	return c.Leeway
}

func (c Config) httpTimeout() time.Duration {
	if c.HTTPTimeout == 0 {
		return DefaultHTTPTimeout
	}
	return c.HTTPTimeout
}

func (c Config) jwksMinAge() time.Duration {
	if c.JWKSMinAge == 0 {
		return DefaultJWKSMinAge
	}
	return c.JWKSMinAge
}

func (c Config) maxTokenSize() int {
	if c.MaxTokenSize == 0 {
		return DefaultMaxTokenSize
	}
	return c.MaxTokenSize
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Validate checks the configuration. Each problem is a *confkey.Error whose
// key is relative to the auth.token section ("jwks_file"), several joined
// with errors.Join. It reads nothing but checks that JWKSFile and CAFile
// exist.
func (c Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, confkey.Errorf(key, format, args...))
	}
	if c.Issuer == "" {
		add("issuer", "is required")
	}
	if c.Audience == "" {
		add("audience", "is required")
	}
	switch {
	case c.JWKSFile != "" && c.Discovery:
		add("jwks_file", "and discovery exclude each other: give one")
	case c.JWKSFile == "" && !c.Discovery:
		add("jwks_file", "or discovery: true is required (where the issuer's keys come from)")
	case c.JWKSFile != "":
		if fi, err := os.Stat(c.JWKSFile); err != nil {
			errs = append(errs, confkey.New("jwks_file", err))
		} else if !fi.Mode().IsRegular() {
			add("jwks_file", "%s is not a regular file", c.JWKSFile)
		}
	case c.Issuer != "":
		if err := checkURL(c.Issuer, c.AllowHTTP); err != nil {
			errs = append(errs, confkey.New("issuer", err))
		}
	}
	if c.AllowHTTP && !c.Discovery {
		add("allow_http", "only applies with discovery: true")
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			errs = append(errs, confkey.New("ca_file", err))
		}
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(allowedAlgorithms, a) {
			add("algorithms", "%q is not allowed (want some of %v; none and HS* never are)", a, allowedAlgorithms)
		}
	}
	if c.Leeway > MaxLeeway {
		add("leeway", "%s is more than %s", c.Leeway, MaxLeeway)
	}
	if c.HTTPTimeout < 0 || c.HTTPTimeout > MaxHTTPTimeout {
		add("http_timeout", "must be between 0 (10s) and %s", MaxHTTPTimeout)
	}
	if c.JWKSMinAge < 0 || c.JWKSMinAge > MaxJWKSMinAge {
		add("jwks_min_age", "must be between 0 (10s) and %s", MaxJWKSMinAge)
	}
	if c.MaxTokenSize < 0 || c.MaxTokenSize > MaxMaxTokenSize {
		add("max_token_size", "must be between 0 (8 KiB) and %d", MaxMaxTokenSize)
	}
	return errors.Join(errs...)
}

// errHTTP is the complaint about a plain http URL without AllowHTTP.
var errHTTP = errors.New("must be https (allow_http: true permits http, for tests and labs only)")

// checkURL reports whether s is an absolute http(s) URL that may be used.
func checkURL(s string, allowHTTP bool) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && u.Host != "":
		if allowHTTP {
			return nil
		}
		return errHTTP
	}
	return errors.New("must be an absolute https URL")
}
