package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth/ldap"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/token"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// providerFiles are the provider sections of auth.
type providerFiles struct {
	Local struct {
		UsersFile           string `mapstructure:"users_file"`
		MaxConcurrentChecks int    `mapstructure:"max_concurrent_checks"`
		WatchInterval       string `mapstructure:"watch_interval"`
		PasswordPolicy      struct {
			MinLength  int    `mapstructure:"min_length"`
			MinClasses int    `mapstructure:"min_classes"`
			History    int    `mapstructure:"history"`
			MaxAge     string `mapstructure:"max_age"`
			WarnBefore string `mapstructure:"warn_before"`
		} `mapstructure:"password_policy"`
	} `mapstructure:"local"`
	LDAP struct {
		URL                []string `mapstructure:"url"`
		StartTLS           bool     `mapstructure:"start_tls"`
		CAFile             string   `mapstructure:"ca_file"`
		ServerName         string   `mapstructure:"server_name"`
		InsecureSkipVerify bool     `mapstructure:"insecure_skip_verify"` // weakening
		AllowCleartext     bool     `mapstructure:"allow_cleartext"`      // weakening
		BindDNTemplate     string   `mapstructure:"bind_dn_template"`
		BaseDN             string   `mapstructure:"base_dn"`
		BindDN             string   `mapstructure:"bind_dn"`
		BindPasswordFile   string   `mapstructure:"bind_password_file"`
		UserFilter         string   `mapstructure:"user_filter"`
		UserAttribute      string   `mapstructure:"user_attribute"`
		GroupAttribute     string   `mapstructure:"group_attribute"`
		GroupBaseDN        string   `mapstructure:"group_base_dn"`
		GroupFilter        string   `mapstructure:"group_filter"`
		GroupNameAttribute string   `mapstructure:"group_name_attribute"`
		DialTimeout        string   `mapstructure:"dial_timeout"`
		Timeout            string   `mapstructure:"timeout"`
		PoolSize           int      `mapstructure:"pool_size"`
		MaxConnections     int      `mapstructure:"max_connections"`
	} `mapstructure:"ldap"`
	Token struct {
		Issuer       string   `mapstructure:"issuer"`
		Audience     string   `mapstructure:"audience"`
		JWKSFile     string   `mapstructure:"jwks_file"`
		Discovery    bool     `mapstructure:"discovery"`
		AllowHTTP    bool     `mapstructure:"allow_http"` // weakening
		CAFile       string   `mapstructure:"ca_file"`
		UserClaim    string   `mapstructure:"user_claim"`
		GroupsClaim  string   `mapstructure:"groups_claim"`
		Algorithms   []string `mapstructure:"algorithms"`
		Leeway       string   `mapstructure:"leeway"`
		HTTPTimeout  string   `mapstructure:"http_timeout"`
		JWKSMinAge   string   `mapstructure:"jwks_min_age"`
		MaxTokenSize int      `mapstructure:"max_token_size"`
		IgnoreUser   bool     `mapstructure:"ignore_user"` // weakening
	} `mapstructure:"token"`
}

// Provider names (auth.providers).
const (
	provLocal = "local"
	provLDAP  = "ldap"
	provToken = "token"
)

// providerSetup holds the checked configuration of each provider in use.
type providerSetup struct {
	local         *local.Config
	watchInterval time.Duration
	ldap          *ldap.Config
	token         *token.Config
}

// optDuration parses an optional duration: "" is zero.
func optDuration(p *problems, key, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.add(key, fmt.Errorf("%q is not a duration (e.g. 5s, 90m, 2160h)", s))
	}
	return d
}

// buildProviders checks the sections of the providers named in order.
func buildProviders(p *problems, f providerFiles, order []string) providerSetup {
	var ps providerSetup
	if len(order) == 0 {
		p.add("auth.providers", errors.New("auth.mode gateway needs at least one provider (local, ldap, token)"))
	}
	for i, name := range order {
		if slices.Index(order, name) != i {
			p.add("auth.providers", fmt.Errorf("%q appears twice", name))
			continue
		}
		switch name {
		case provLocal:
			ps.local, ps.watchInterval = buildLocal(p, f)
		case provLDAP:
			ps.ldap = buildLDAP(p, f)
		case provToken:
			ps.token = buildToken(p, f)
		default:
			p.add("auth.providers", fmt.Errorf("%q is not a provider (want local, ldap or token)", name))
		}
	}
	return ps
}

func buildLocal(p *problems, f providerFiles) (*local.Config, time.Duration) {
	l := f.Local
	c := local.DefaultConfig(l.UsersFile)
	c.MaxConcurrent = l.MaxConcurrentChecks
	pp := l.PasswordPolicy
	c.Policy.MinLength, c.Policy.MinClasses, c.Policy.History = pp.MinLength, pp.MinClasses, pp.History
	c.Policy.MaxAge = optDuration(p, "auth.local.password_policy.max_age", pp.MaxAge)
	c.Policy.WarnBefore = optDuration(p, "auth.local.password_policy.warn_before", pp.WarnBefore)
	// The package names its keys file and policy.*; the YAML says
	// users_file and password_policy.*.
	if err := under("auth.local", c.Validate(), "file", "users_file", "policy", "password_policy"); err != nil {
		p.addNew(err)
	} else if err := checkUsersFile(c); err != nil {
		p.add("auth.local.users_file", err)
	}
	watch := optDuration(p, "auth.local.watch_interval", l.WatchInterval)
	if watch < 0 {
		p.add("auth.local.watch_interval", errors.New("must not be negative (0 turns watching off)"))
	}
	return &c, watch
}

// checkUsersFile loads the users file as the gateway will (permissions,
// entries, backend passwords from their files and variables), so that
// validate reports a file that would not load. The dummy hash Open makes is
// cheap here: this Store is thrown away.
func checkUsersFile(c local.Config) error {
	c.Params = local.Params{Memory: 8, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}
	_, err := local.Open(c, zerolog.Nop())
	return err
}

func buildLDAP(p *problems, f providerFiles) *ldap.Config {
	l := f.LDAP
	c := ldap.Config{
		URLs: l.URL, StartTLS: l.StartTLS, CAFile: l.CAFile, ServerName: l.ServerName,
		InsecureSkipVerify: l.InsecureSkipVerify, AllowCleartext: l.AllowCleartext,
		BindDNTemplate: l.BindDNTemplate, BaseDN: l.BaseDN, BindDN: l.BindDN, BindPasswordFile: l.BindPasswordFile,
		UserFilter: l.UserFilter, UserAttribute: l.UserAttribute, GroupAttribute: l.GroupAttribute,
		GroupBaseDN: l.GroupBaseDN, GroupFilter: l.GroupFilter, GroupNameAttribute: l.GroupNameAttribute,
		DialTimeout: optDuration(p, "auth.ldap.dial_timeout", l.DialTimeout),
		Timeout:     optDuration(p, "auth.ldap.timeout", l.Timeout),
		PoolSize:    l.PoolSize, MaxConnections: l.MaxConnections,
	}
	p.addNew(under("auth.ldap", c.Validate()))
	return &c
}

func buildToken(p *problems, f providerFiles) *token.Config {
	t := f.Token
	c := token.Config{
		Issuer: t.Issuer, Audience: t.Audience, JWKSFile: t.JWKSFile, Discovery: t.Discovery, AllowHTTP: t.AllowHTTP,
		CAFile: t.CAFile, UserClaim: t.UserClaim, GroupsClaim: t.GroupsClaim, Algorithms: t.Algorithms,
		Leeway:       optDuration(p, "auth.token.leeway", t.Leeway),
		HTTPTimeout:  optDuration(p, "auth.token.http_timeout", t.HTTPTimeout),
		JWKSMinAge:   optDuration(p, "auth.token.jwks_min_age", t.JWKSMinAge),
		MaxTokenSize: t.MaxTokenSize, IgnoreUser: t.IgnoreUser,
	}
	p.addNew(under("auth.token", c.Validate()))
	return &c
}

// under puts prefix in front of the keys of err's problems. A problem
// whose message starts "key: " (packages that do not use confkey) gets
// that key. rename holds pairs: a key (or its first part) the package uses
// and the configuration file's name for it.
func under(prefix string, err error, rename ...string) error {
	var out []error
	for _, e := range confkey.List(err) {
		key, msg := e.Key, e.Err
		if key == "" {
			if k, rest, ok := strings.Cut(msg.Error(), ": "); ok && k != "" && !strings.ContainsAny(k, " \t\"") {
				key, msg = k, errors.New(rest)
			}
		}
		for i := 0; i+1 < len(rename); i += 2 {
			if key == rename[i] || strings.HasPrefix(key, rename[i]+".") {
				key = rename[i+1] + strings.TrimPrefix(key, rename[i])
				break
			}
		}
		out = append(out, confkey.New(confkey.Join(prefix, key), msg))
	}
	return errors.Join(out...)
}
