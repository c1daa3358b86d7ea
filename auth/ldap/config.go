package ldap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of the zero Config.
const (
	DefaultUserFilter         = "(&(objectClass=person)(uid=%s))"
	DefaultUserAttribute      = "uid"
	DefaultGroupAttribute     = "memberOf"
	DefaultGroupFilter        = "(&(objectClass=groupOfNames)(member=%s))"
	DefaultGroupNameAttribute = "cn"
	DefaultDialTimeout        = 5 * time.Second
	DefaultTimeout            = 5 * time.Second
	DefaultPoolSize           = 4
	DefaultMaxConnections     = 16
)

// maxGroups bounds the groups read for one user (memberOf values and group
// search entries each).
const maxGroups = 1000

// Config configures the LDAP provider. Field comments name the key under
// auth.ldap. The zero value of a field with a default means the default.
type Config struct {
	// URLs (url: one string or a list) are the directory servers, ldap://
	// or ldaps://, tried in order; one that fails to connect hands over to
	// the next, and the last that answered is tried first next time.
	URLs []string
	// StartTLS (start_tls) upgrades ldap:// connections with StartTLS
	// before anything else is sent.
	StartTLS bool
	// CAFile (ca_file) holds the PEM certificates that verify the
	// directory's certificate; empty means the system's roots.
	CAFile string
	// ServerName (server_name) is the name the directory's certificate
	// must carry; empty means the host of the URL.
	ServerName string
	// InsecureSkipVerify (insecure_skip_verify) accepts any certificate:
	// a weakening (a man in the middle reads every password).
	InsecureSkipVerify bool
	// AllowCleartext (allow_cleartext) allows ldap:// without StartTLS:
	// a weakening (passwords cross the network in clear text).
	AllowCleartext bool

	// BindDNTemplate (bind_dn_template) selects bind mode: the user binds
	// with this DN, "%s" (exactly once) replaced by the user name escaped
	// for a DN (RFC 4514), e.g. "uid=%s,ou=people,dc=example,dc=org".
	BindDNTemplate string

	// BaseDN (base_dn) selects search mode: the user's entry is searched
	// for below it (with the service account, if any), then the user binds
	// with the entry's DN.
	BaseDN string
	// BindDN (bind_dn) is the service account that searches; empty means
	// anonymous searches. Optional in bind mode (then group searches use
	// it instead of the user's own bind).
	BindDN string
	// BindPasswordFile (bind_password_file) holds the service account's
	// password (one line; a final newline is dropped). The password is
	// never in the YAML itself.
	BindPasswordFile string
	// BindPassword is the service password itself. Not a configuration
	// key: for callers that hold it already; at most one of BindPassword
	// and BindPasswordFile. It prints as "[redacted]".
	BindPassword Secret
	// UserFilter (user_filter) finds the user's entry in search mode, "%s"
	// (exactly once) replaced by the user name escaped for a filter
	// (RFC 4515). Default DefaultUserFilter; Active Directory wants
	// "(&(objectClass=user)(sAMAccountName=%s))".
	UserFilter string
	// UserAttribute (user_attribute) holds the canonical user name in the
	// entry. Default "uid" (sAMAccountName for Active Directory).
	UserAttribute string

	// GroupAttribute (group_attribute) lists the user's groups in the
	// user's entry as group DNs (memberOf); each group's name is the value
	// of its DN's first RDN. Default "memberOf"; "-" turns it off.
	GroupAttribute string
	// GroupBaseDN (group_base_dn) turns on a group search below it, in
	// addition to GroupAttribute.
	GroupBaseDN string
	// GroupFilter (group_filter) finds the user's groups, "%s" (exactly
	// once) replaced by the user's DN escaped for a filter. Default
	// DefaultGroupFilter.
	GroupFilter string
	// GroupNameAttribute (group_name_attribute) names a group found by the
	// group search. Default "cn".
	GroupNameAttribute string

	// DialTimeout (dial_timeout) bounds connecting to one server,
	// including the TLS handshake and StartTLS. Default 5s.
	DialTimeout time.Duration
	// Timeout (timeout) bounds each LDAP operation (bind, search).
	// Default 5s.
	Timeout time.Duration
	// PoolSize (pool_size) is the number of idle service connections kept
	// for searches. Default 4.
	PoolSize int
	// MaxConnections (max_connections) bounds the logins using the
	// directory at once, each with one connection at a time (two in bind
	// mode with a service account and a group search); idle pooled
	// connections come on top. A login waits for its turn within its own
	// deadline. Default 16.
	MaxConnections int
}

// Secret is a password that does not print: fmt shows "[redacted]", so a
// Config in a log line or an error keeps it out.
type Secret string

// String returns "[redacted]" for a set secret, "" for an empty one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString is String, for %#v.
func (s Secret) GoString() string { return s.String() }

func (c *Config) bindMode() bool { return c.BindDNTemplate != "" }

func (c *Config) userFilter() string    { return orDefault(c.UserFilter, DefaultUserFilter) }
func (c *Config) userAttribute() string { return orDefault(c.UserAttribute, DefaultUserAttribute) }
func (c *Config) groupFilter() string   { return orDefault(c.GroupFilter, DefaultGroupFilter) }
func (c *Config) groupNameAttr() string {
	return orDefault(c.GroupNameAttribute, DefaultGroupNameAttribute)
}
func (c *Config) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }
func (c *Config) timeout() time.Duration     { return orDefault(c.Timeout, DefaultTimeout) }
func (c *Config) poolSize() int              { return orDefault(c.PoolSize, DefaultPoolSize) }
func (c *Config) maxConnections() int        { return orDefault(c.MaxConnections, DefaultMaxConnections) }

// groupAttribute is the memberOf-like attribute, "" when turned off.
func (c *Config) groupAttribute() string {
	if c.GroupAttribute == "-" {
		return ""
	}
	return orDefault(c.GroupAttribute, DefaultGroupAttribute)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Validate checks c; each problem names its key, relative to auth.ldap.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.URLs) == 0 {
		add(confkey.Errorf("url", "no directory server: set url to ldaps://host or ldap://host with start_tls"))
	}
	for i, u := range c.URLs {
		add(c.validateURL(fmt.Sprintf("url[%d]", i), u))
	}
	if c.InsecureSkipVerify && c.CAFile != "" {
		add(confkey.Errorf("insecure_skip_verify", "set together with ca_file: the certificate would not be verified at all"))
	}
	switch {
	case c.BindDNTemplate != "" && c.BaseDN != "":
		add(confkey.Errorf("bind_dn_template", "set together with base_dn: choose bind mode (bind_dn_template) or search mode (base_dn)"))
	case c.BindDNTemplate == "" && c.BaseDN == "":
		add(confkey.Errorf("base_dn", "neither base_dn (search mode) nor bind_dn_template (bind mode) is set"))
	}
	if c.BindDNTemplate != "" {
		add(checkTemplate("bind_dn_template", c.BindDNTemplate))
		if err := checkDN(strings.Replace(c.BindDNTemplate, "%s", "x", 1)); err != nil {
			add(confkey.Errorf("bind_dn_template", "not a DN: %w", err))
		}
	}
	for _, f := range []struct{ key, dn string }{{"base_dn", c.BaseDN}, {"bind_dn", c.BindDN}, {"group_base_dn", c.GroupBaseDN}} {
		if f.dn != "" {
			if err := checkDN(f.dn); err != nil {
				add(confkey.Errorf(f.key, "not a DN: %w", err))
			}
		}
	}
	if c.BindPassword != "" && c.BindPasswordFile != "" {
		add(confkey.Errorf("bind_password_file", "set together with a password given directly: set one"))
	}
	if c.BindDN == "" && (c.BindPassword != "" || c.BindPasswordFile != "") {
		add(confkey.Errorf("bind_password_file", "set without bind_dn"))
	}
	if c.BindDN != "" && c.BindPassword == "" && c.BindPasswordFile == "" {
		add(confkey.Errorf("bind_password_file", "bind_dn needs the service account's password in bind_password_file"))
	}
	add(checkFilter("user_filter", c.userFilter()))
	if c.GroupFilter != "" && c.GroupBaseDN == "" {
		add(confkey.Errorf("group_filter", "set without group_base_dn, the search would not run"))
	}
	if c.GroupBaseDN != "" {
		add(checkFilter("group_filter", c.groupFilter()))
	}
	for _, a := range []struct{ key, v string }{
		{"user_attribute", c.UserAttribute}, {"group_name_attribute", c.GroupNameAttribute},
	} {
		if a.v != "" && !validAttr(a.v) {
			add(confkey.Errorf(a.key, "%q is not an attribute name", a.v))
		}
	}
	if c.GroupAttribute != "" && c.GroupAttribute != "-" && !validAttr(c.GroupAttribute) {
		add(confkey.Errorf("group_attribute", "%q is not an attribute name (\"-\" turns it off)", c.GroupAttribute))
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"timeout", c.Timeout}} {
		if d.v < 0 {
			add(confkey.Errorf(d.key, "negative duration %s", d.v))
		}
	}
	if c.PoolSize < 0 {
		add(confkey.Errorf("pool_size", "negative: %d", c.PoolSize))
	}
	if c.MaxConnections < 0 {
		add(confkey.Errorf("max_connections", "negative: %d", c.MaxConnections))
	}
	return errors.Join(errs...)
}

func (c *Config) validateURL(key, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return confkey.Errorf(key, "%w", err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return confkey.Errorf(key, "%q has no host", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return confkey.Errorf(key, "%q: only scheme://host[:port] is allowed (the base DN is base_dn)", s)
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return confkey.Errorf(key, "%q: bad port", s)
		}
	}
	switch u.Scheme {
	case "ldaps":
		if c.StartTLS {
			return confkey.Errorf(key, "%q is ldaps:// (TLS from the start) and start_tls is set: use one", s)
		}
	case "ldap":
		if !c.StartTLS && !c.AllowCleartext {
			return confkey.Errorf(key, "%q would send passwords in clear text: use ldaps://, start_tls: true, or (a weakening) allow_cleartext: true", s)
		}
	default:
		return confkey.Errorf(key, "%q: the scheme must be ldap or ldaps", s)
	}
	return nil
}

// checkTemplate checks that s has exactly one "%s" and no other '%'.
func checkTemplate(key, s string) error {
	if strings.Count(s, "%s") != 1 || strings.Count(s, "%") != 1 {
		return confkey.Errorf(key, "%q must contain %%s exactly once and no other %%", s)
	}
	return nil
}

func checkFilter(key, f string) error {
	if err := checkTemplate(key, f); err != nil {
		return err
	}
	if _, err := goldap.CompileFilter(strings.Replace(f, "%s", "x", 1)); err != nil {
		return confkey.Errorf(key, "%q is not an LDAP filter: %w", f, err)
	}
	return nil
}

func checkDN(dn string) error {
	d, err := goldap.ParseDN(dn)
	if err != nil {
		return err
	}
	if len(d.RDNs) == 0 {
		return errors.New("empty")
	}
	return nil
}

// validAttr: an attribute descriptor (RFC 4512 keystring or numeric OID,
// options allowed).
func validAttr(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ';') {
			return false
		}
	}
	return true
}
