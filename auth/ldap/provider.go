package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Name is the provider's name in the chain and in Identity.Provider.
const Name = "ldap"

// maxUserLen bounds the user names sent to the directory.
const maxUserLen = 256

// Provider checks passwords against an LDAP directory or Active Directory.
// It is safe for concurrent use. Close releases its idle connections.
type Provider struct {
	cfg          Config
	log          zerolog.Logger
	servers      []server
	roots        *x509.CertPool // nil: the system's
	bindPassword string         // the service account's; never logged

	preferred atomic.Int32  // index of the server that answered last
	pool      chan *conn    // idle service connections
	slots     chan struct{} // one per login using the directory
}

var _ auth.Provider = (*Provider)(nil)

// New checks cfg, reads its CA and service password files and returns the
// provider. It does not contact the directory: a directory that is down
// at start-up makes logins fail with auth.ErrUnavailable, not the gateway.
func New(cfg Config, log zerolog.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:          cfg,
		log:          log.With().Str("provider", Name).Logger(),
		bindPassword: string(cfg.BindPassword),
		pool:         make(chan *conn, cfg.poolSize()),
		slots:        make(chan struct{}, cfg.maxConnections()),
	}
	for i, u := range cfg.URLs {
		srv, err := parseServer(u, cfg.ServerName)
		if err != nil {
			return nil, confkey.Errorf(fmt.Sprintf("url[%d]", i), "%w", err)
		}
		p.servers = append(p.servers, srv)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, confkey.New("ca_file", err)
		}
		p.roots = x509.NewCertPool()
		if !p.roots.AppendCertsFromPEM(pem) {
			return nil, confkey.Errorf("ca_file", "%s holds no PEM certificate", cfg.CAFile)
		}
	}
	if cfg.BindPasswordFile != "" {
		b, err := os.ReadFile(cfg.BindPasswordFile)
		if err != nil {
			return nil, confkey.New("bind_password_file", err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" || strings.ContainsAny(pw, "\r\n") {
			return nil, confkey.Errorf("bind_password_file", "%s must hold the password on one line", cfg.BindPasswordFile)
		}
		p.bindPassword = pw
	}
	return p, nil
}

// Name returns "ldap".
func (p *Provider) Name() string { return Name }

// Close closes the idle pooled connections. The provider stays usable;
// call Close when it is replaced (a reload) or the gateway stops.
func (p *Provider) Close() error {
	for {
		select {
		case c := <-p.pool:
			c.close()
		default:
			return nil
		}
	}
}

func (p *Provider) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		RootCAs:            p.roots,
		InsecureSkipVerify: p.cfg.InsecureSkipVerify, //nolint:gosec // a documented weakening, off by default
		MinVersion:         tls.VersionTLS12,
	}
}

// Verify checks user's password against the directory. See the package
// documentation for the outcomes.
func (p *Provider) Verify(ctx context.Context, user, secret string) (auth.Identity, error) {
	if secret == "" {
		// An empty password would be an unauthenticated bind (RFC 4513
		// 5.1.2), which directories answer with success.
		return auth.Identity{}, fmt.Errorf("ldap: empty password for %q: %w", user, auth.ErrDenied)
	}
	if !validUser(user) {
		return auth.Identity{}, fmt.Errorf("ldap: user name %q is not one a directory holds: %w", user, auth.ErrUnknownUser)
	}
	release, err := p.acquire(ctx)
	if err != nil {
		return auth.Identity{}, unavailable(err)
	}
	defer release()
	if p.cfg.bindMode() {
		return p.verifyBind(ctx, user, secret)
	}
	return p.verifySearch(ctx, user, secret)
}

// verifySearch: find the user's entry with the service account, then bind
// as it.
func (p *Provider) verifySearch(ctx context.Context, user, secret string) (auth.Identity, error) {
	filter := strings.Replace(p.cfg.userFilter(), "%s", goldap.EscapeFilter(user), 1)
	req := goldap.NewSearchRequest(p.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		2, p.timeLimit(), false, filter, p.entryAttrs(), nil)
	req.EnforceSizeLimit = true
	res, err := p.search(ctx, req)
	switch {
	case err == nil:
	case errors.Is(err, goldap.ErrSizeLimitExceeded) || goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded):
		return p.ambiguous(user, filter, 2)
	default:
		return auth.Identity{}, unavailable(fmt.Errorf("search for %q below %q: %w", user, p.cfg.BaseDN, err))
	}
	switch len(res.Entries) {
	case 0:
		return auth.Identity{}, fmt.Errorf("ldap: no entry below %q matches %s: %w", p.cfg.BaseDN, filter, auth.ErrUnknownUser)
	case 1:
	default:
		return p.ambiguous(user, filter, len(res.Entries))
	}
	entry := res.Entries[0]
	if entry.DN == "" {
		// A bind with an empty name is anonymous on some servers.
		return auth.Identity{}, fmt.Errorf("ldap: %s matched an entry with an empty DN: %w", filter, auth.ErrDenied)
	}
	c, err := p.userBind(ctx, entry.DN, secret)
	if err != nil {
		return auth.Identity{}, err
	}
	c.close()
	return p.identity(ctx, user, entry, nil)
}

func (p *Provider) ambiguous(user, filter string, n int) (auth.Identity, error) {
	p.log.Error().Str("user", user).Str("filter", filter).Int("entries", n).
		Msg("user_filter matches more than one entry: login denied; make the filter match one entry per user")
	return auth.Identity{}, fmt.Errorf("ldap: %s matches %d or more entries below %q: %w", filter, n, p.cfg.BaseDN, auth.ErrDenied)
}

// verifyBind: bind as the DN the template makes, then read the user's own
// entry for the canonical name and memberOf.
func (p *Provider) verifyBind(ctx context.Context, user, secret string) (auth.Identity, error) {
	dn := strings.Replace(p.cfg.BindDNTemplate, "%s", goldap.EscapeDN(user), 1)
	c, err := p.userBind(ctx, dn, secret)
	if err != nil {
		return auth.Identity{}, err
	}
	defer c.close()
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, p.timeLimit(), false, "(objectClass=*)", p.entryAttrs(), nil)
	var res *goldap.SearchResult
	err = c.do(ctx, func() (err error) { res, err = c.l.Search(req); return err })
	entry := goldap.NewEntry(dn, nil)
	switch {
	case err == nil && len(res.Entries) == 1:
		entry = res.Entries[0]
		if entry.DN == "" {
			entry.DN = dn
		}
	case err == nil || isResult(err):
		// The user may not read their own entry: the name as sent, and
		// only the group search's groups.
		p.log.Debug().Str("user", user).Err(err).Msg("cannot read the user's own entry after the bind")
	default:
		return auth.Identity{}, unavailable(fmt.Errorf("reading %q: %w", dn, err))
	}
	return p.identity(ctx, user, entry, c)
}

// userBind binds as dn on a connection of its own; the caller closes it.
func (p *Provider) userBind(ctx context.Context, dn, secret string) (*conn, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	err = c.do(ctx, func() error { return c.l.Bind(dn, secret) })
	if err != nil {
		c.close()
		return nil, bindError(dn, err)
	}
	return c, nil
}

// bindError maps a failed user bind: the server's refusals are denials
// (auth.ErrExpired and auth.ErrDisabled when Active Directory says so),
// anything else means the directory cannot answer.
func bindError(dn string, err error) error {
	var le *goldap.Error
	if errors.As(err, &le) && isResult(err) {
		switch le.ResultCode {
		case goldap.LDAPResultInvalidCredentials:
			return fmt.Errorf("ldap: bind as %q: %w (%v)", dn, adBindError(le.Err.Error()), err)
		case goldap.LDAPResultInappropriateAuthentication, goldap.LDAPResultInsufficientAccessRights,
			goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultInvalidDNSyntax,
			goldap.LDAPResultNoSuchObject, goldap.LDAPResultConstraintViolation:
			return fmt.Errorf("ldap: bind as %q: %w (%v)", dn, auth.ErrDenied, err)
		}
	}
	return unavailable(fmt.Errorf("bind as %q: %w", dn, err))
}

// identity builds the Identity of the user whose entry is e; userConn is
// the user's bound connection in bind mode without a service account (the
// group search runs on it), nil otherwise.
func (p *Provider) identity(ctx context.Context, user string, e *goldap.Entry, userConn *conn) (auth.Identity, error) {
	id := auth.Identity{User: user, Provider: Name, Factor: auth.FactorPassword}
	if vals := e.GetEqualFoldAttributeValues(p.cfg.userAttribute()); len(vals) > 0 {
		id.User = vals[0]
		for _, v := range vals {
			if strings.EqualFold(v, user) {
				id.User = v
				break
			}
		}
	}
	groups := map[string]struct{}{}
	if a := p.cfg.groupAttribute(); a != "" {
		vals := e.GetEqualFoldAttributeValues(a)
		for _, v := range vals[:min(len(vals), maxGroups)] {
			if name := firstRDNValue(v); name != "" {
				groups[name] = struct{}{}
			}
		}
	}
	if p.cfg.GroupBaseDN != "" {
		names, err := p.searchGroups(ctx, e.DN, userConn)
		if err != nil {
			return auth.Identity{}, err
		}
		for _, n := range names {
			groups[n] = struct{}{}
		}
	}
	for g := range groups {
		id.Groups = append(id.Groups, g)
	}
	slices.Sort(id.Groups)
	return id, nil
}

// searchGroups runs the group search for the user's DN: with the service
// account, or on the user's own connection when there is none.
func (p *Provider) searchGroups(ctx context.Context, dn string, userConn *conn) ([]string, error) {
	attr := p.cfg.groupNameAttr()
	filter := strings.Replace(p.cfg.groupFilter(), "%s", goldap.EscapeFilter(dn), 1)
	req := goldap.NewSearchRequest(p.cfg.GroupBaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases,
		maxGroups, p.timeLimit(), false, filter, []string{attr}, nil)
	req.EnforceSizeLimit = true
	var res *goldap.SearchResult
	var err error
	if userConn != nil && p.cfg.BindDN == "" {
		err = userConn.do(ctx, func() (err error) { res, err = userConn.l.Search(req); return err })
	} else {
		res, err = p.search(ctx, req)
	}
	if errors.Is(err, goldap.ErrSizeLimitExceeded) || goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		p.log.Warn().Str("filter", filter).Int("limit", maxGroups).Msg("group search: more groups than the limit, the rest ignored")
		err = nil
	}
	if err != nil {
		// Without its groups the user would meet the wrong rules.
		return nil, unavailable(fmt.Errorf("group search below %q for %q: %w", p.cfg.GroupBaseDN, dn, err))
	}
	var names []string
	for _, e := range res.Entries {
		if v := e.GetEqualFoldAttributeValue(attr); v != "" {
			names = append(names, v)
		}
	}
	return names, nil
}

// search runs req on a service connection. A pooled connection that fails
// on the network (the server closed it while idle) is dropped and the
// search runs once more on a new one.
func (p *Provider) search(ctx context.Context, req *goldap.SearchRequest) (*goldap.SearchResult, error) {
	for attempt := 0; ; attempt++ {
		c, pooled, err := p.service(ctx)
		if err != nil {
			return nil, err
		}
		var res *goldap.SearchResult
		err = c.do(ctx, func() (err error) { res, err = c.l.Search(req); return err })
		p.put(c)
		if err != nil && pooled && attempt == 0 && !isResult(err) && ctx.Err() == nil &&
			!errors.Is(err, goldap.ErrSizeLimitExceeded) {
			p.log.Debug().Err(err).Str("server", c.srv).Msg("idle directory connection failed, retrying on a new one")
			continue
		}
		return res, err
	}
}

func (p *Provider) entryAttrs() []string {
	attrs := []string{p.cfg.userAttribute()}
	if a := p.cfg.groupAttribute(); a != "" {
		attrs = append(attrs, a)
	}
	return attrs
}

// timeLimit is the server-side time limit of searches, in whole seconds.
func (p *Provider) timeLimit() int {
	return int(math.Ceil(p.cfg.timeout().Seconds()))
}

func unavailable(err error) error {
	return fmt.Errorf("ldap: %w: %w", auth.ErrUnavailable, err)
}

// validUser: names a directory can hold, bounded in length; anything else
// is unknown here without asking the directory. Leading and trailing spaces
// are refused: LDAP matching ignores them, so " admin" would be admin under
// another spelling.
func validUser(user string) bool {
	if user == "" || len(user) > maxUserLen || !utf8.ValidString(user) || strings.TrimSpace(user) != user {
		return false
	}
	for _, r := range user {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// firstRDNValue is the value of the first RDN of dn ("cn=ops,ou=groups,..."
// gives "ops"); "" when dn does not parse.
func firstRDNValue(dn string) string {
	d, err := goldap.ParseDN(dn)
	if err != nil || len(d.RDNs) == 0 || len(d.RDNs[0].Attributes) == 0 {
		return ""
	}
	return d.RDNs[0].Attributes[0].Value
}
