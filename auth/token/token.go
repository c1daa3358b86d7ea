package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/ftpsgate/ftpsgate/auth"
)

// Name is the Provider's name, as Identity.Provider and the logs spell it.
const Name = "token"

// maxUserLen bounds the user claim, which becomes the edge user name.
const maxUserLen = 256

// Provider verifies access tokens sent as the FTP password. It is safe for
// concurrent use.
type Provider struct {
	cfg    Config
	client *http.Client

	static *oidc.IDTokenVerifier // with JWKSFile

	// With Discovery: the verifier once discovery succeeded; discover holds
	// the one discovery in flight.
	remote   atomic.Pointer[oidc.IDTokenVerifier]
	discover chan struct{}
}

var _ auth.Provider = (*Provider)(nil)

// New returns a Provider for cfg. It validates cfg and reads JWKSFile; with
// Discovery it does not contact the issuer (the first token does), so the
// gateway starts while the issuer is down.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	p := &Provider{cfg: cfg, client: client, discover: make(chan struct{}, 1)}
	if cfg.JWKSFile != "" {
		keys, err := loadJWKS(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		p.static = oidc.NewVerifier(cfg.Issuer, &oidc.StaticKeySet{PublicKeys: keys}, p.oidcConfig())
	}
	return p, nil
}

func (p *Provider) oidcConfig() *oidc.Config {
	return &oidc.Config{
		ClientID:             p.cfg.Audience,
		SupportedSigningAlgs: p.cfg.algorithms(),
		// The time checks are ours, with a bounded leeway.
		SkipExpiryCheck: true,
	}
}

// Name returns "token".
func (p *Provider) Name() string { return Name }

// Close releases the idle connections to the issuer.
func (p *Provider) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// verifier returns the verifier, discovering the issuer's JWKS first if
// need be (one discovery at a time, each bounded by its caller's ctx and
// the HTTP timeout; a failed one is tried again by the next token).
func (p *Provider) verifier(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if p.static != nil {
		return p.static, nil
	}
	if v := p.remote.Load(); v != nil {
		return v, nil
	}
	select {
	case p.discover <- struct{}{}:
		defer func() { <-p.discover }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if v := p.remote.Load(); v != nil {
		return v, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), p.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("discovery: no jwks_uri")
	}
	if err := checkURL(meta.JWKSURI, p.cfg.AllowHTTP); err != nil {
		return nil, fmt.Errorf("discovery: jwks_uri %s: %w", meta.JWKSURI, err)
	}
	// The key set outlives ctx: it caches the keys and fetches them again
	// when a token names a key it does not hold.
	kc := *p.client
	kc.Transport = &jwksCache{base: p.client.Transport, url: meta.JWKSURI, minAge: p.cfg.jwksMinAge(), now: p.cfg.now}
	ks := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), &kc), meta.JWKSURI)
	v := oidc.NewVerifier(p.cfg.Issuer, remoteKeys{ks}, p.oidcConfig())
	p.remote.Store(v)
	return v, nil
}

// claims are the registered claims the Provider checks itself.
type claims struct {
	Exp *json.Number `json:"exp"`
	NBF *json.Number `json:"nbf"`
	IAT *json.Number `json:"iat"`
}

// Verify checks secret as a token for user; see the package documentation.
func (p *Provider) Verify(ctx context.Context, user, secret string) (auth.Identity, error) {
	if !jwtShaped(secret) {
		return auth.Identity{}, auth.ErrUnknownUser
	}
	if n := len(secret); n > p.cfg.maxTokenSize() {
		return deny("token of %d bytes is longer than max_token_size %d", n, p.cfg.maxTokenSize())
	}
	if !jwtHeader(secret) {
		return auth.Identity{}, auth.ErrUnknownUser
	}
	v, err := p.verifier(ctx)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("%w: token: issuer %s: %w", auth.ErrUnavailable, p.cfg.Issuer, err)
	}
	st := &verifyState{}
	tok, err := v.Verify(context.WithValue(ctx, stateKey{}, st), secret)
	if st.fetchErr != nil {
		return auth.Identity{}, fmt.Errorf("%w: token: issuer %s keys: %w", auth.ErrUnavailable, p.cfg.Issuer, st.fetchErr)
	}
	if err != nil {
		return deny("%v", err)
	}
	var all map[string]json.RawMessage
	if err := tok.Claims(&all); err != nil {
		return deny("claims: %v", err)
	}
	var reg claims
	if err := tok.Claims(&reg); err != nil {
		return deny("claims: %v", err)
	}
	if err := p.checkTimes(reg); err != nil {
		return deny("%v", err)
	}
	name, err := stringClaim(all, p.cfg.userClaim())
	if err != nil {
		return deny("%v", err)
	}
	if !p.cfg.IgnoreUser && name != user {
		return deny("the token is for user %q, not %q (the name sent with USER)", name, user)
	}
	groups, err := listClaim(all, p.cfg.groupsClaim())
	if err != nil {
		return deny("%v", err)
	}
	return auth.Identity{User: name, Groups: groups, Provider: Name, Factor: auth.FactorToken}, nil
}

func deny(format string, args ...any) (auth.Identity, error) {
	return auth.Identity{}, fmt.Errorf("%w: token: %s", auth.ErrDenied, fmt.Sprintf(format, args...))
}

// checkTimes checks exp (required), nbf and iat against the clock with the
// leeway.
func (p *Provider) checkTimes(c claims) error {
	now, leeway := p.cfg.now(), p.cfg.leeway()
	if c.Exp == nil {
		return errors.New("no exp claim")
	}
	exp, err := unixTime(*c.Exp)
	if err != nil {
		return fmt.Errorf("exp: %w", err)
	}
	if now.After(exp.Add(leeway)) {
		return fmt.Errorf("expired at %s (leeway %s)", exp.UTC().Format(time.RFC3339), leeway)
	}
	if c.NBF != nil {
		nbf, err := unixTime(*c.NBF)
		if err != nil {
			return fmt.Errorf("nbf: %w", err)
		}
		if nbf.After(now.Add(leeway)) {
			return fmt.Errorf("not valid before %s (leeway %s)", nbf.UTC().Format(time.RFC3339), leeway)
		}
	}
	if c.IAT != nil {
		iat, err := unixTime(*c.IAT)
		if err != nil {
			return fmt.Errorf("iat: %w", err)
		}
		if iat.After(now.Add(leeway)) {
			return fmt.Errorf("issued in the future, at %s (leeway %s)", iat.UTC().Format(time.RFC3339), leeway)
		}
	}
	return nil
}

// unixTime reads a NumericDate (RFC 7519 section 2): seconds since the
// epoch, possibly fractional, within a sane range.
func unixTime(n json.Number) (time.Time, error) {
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("%q is not a NumericDate", n.String())
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

// stringClaim is the claim name, a non-empty string without control
// characters: it becomes the edge user name.
func stringClaim(all map[string]json.RawMessage, name string) (string, error) {
	raw, ok := all[name]
	if !ok {
		return "", fmt.Errorf("no %s claim", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("the %s claim is not a string", name)
	}
	if s == "" || len(s) > maxUserLen || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("the %s claim is empty, longer than %d bytes or holds control characters", name, maxUserLen)
	}
	return s, nil
}

// listClaim is the claim name as a list of strings; absent or null: none.
func listClaim(all map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := all[name]
	if !ok {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("the %s claim is not a list of strings", name)
	}
	for _, g := range l {
		if strings.ContainsFunc(g, unicode.IsControl) {
			return nil, fmt.Errorf("a group in the %s claim holds control characters", name)
		}
	}
	return l, nil
}

// jwtShaped reports whether s is three base64url parts (the JWS compact
// serialization), the first two non-empty.
func jwtShaped(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
			if dots > 2 {
				return false
			}
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	if dots != 2 {
		return false
	}
	h, rest, _ := strings.Cut(s, ".")
	payload, _, _ := strings.Cut(rest, ".")
	return h != "" && payload != ""
}

// jwtHeader reports whether the first part of a jwtShaped s decodes to a
// JSON object with an "alg" string: a JOSE header, not a password that
// happens to have two dots.
func jwtHeader(s string) bool {
	h, _, _ := strings.Cut(s, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return false
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(b, &hdr) == nil && hdr.Alg != nil
}
