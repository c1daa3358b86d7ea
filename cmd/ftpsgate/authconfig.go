package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// authFile is the auth section of the configuration file.
type authFile struct {
	Mode           string          `mapstructure:"mode"`
	Providers      []string        `mapstructure:"providers"`
	DefaultFactors []string        `mapstructure:"default_factors"`
	Groups         []authGroupFile `mapstructure:"groups"`
	Backend        struct {
		User            string `mapstructure:"user"`
		PasswordFile    string `mapstructure:"password_file"`
		PasswordEnv     string `mapstructure:"password_env"`
		ForwardPassword bool   `mapstructure:"forward_password"` // weakens: the edge password reaches the backend
	} `mapstructure:"backend"`
	Lockout struct {
		Threshold int    `mapstructure:"threshold"`
		Delay     string `mapstructure:"delay"`
		MaxDelay  string `mapstructure:"max_delay"`
		LockAfter int    `mapstructure:"lock_after"`
		LockFor   string `mapstructure:"lock_for"`
		Window    string `mapstructure:"window"`
		MaxUsers  int    `mapstructure:"max_users"`
	} `mapstructure:"lockout"`
	providerFiles `mapstructure:",squash"`
}

// authGroupFile is one entry of auth.groups.
type authGroupFile struct {
	Name                string   `mapstructure:"name"`
	Factors             []string `mapstructure:"factors"`
	BackendUser         string   `mapstructure:"backend_user"`
	BackendPasswordFile string   `mapstructure:"backend_password_file"`
	BackendPasswordEnv  string   `mapstructure:"backend_password_env"`
}

// Authentication modes (auth.mode).
const (
	modePassthrough = "passthrough"
	modeGateway     = "gateway"
)

// authDefaults are the auth section's scalar keys with their defaults.
var authDefaults = map[string]any{
	"auth.mode":                              modePassthrough,
	"auth.providers":                         []string{},
	"auth.default_factors":                   []string{},
	"auth.backend.user":                      "",
	"auth.backend.password_file":             "",
	"auth.backend.password_env":              "",
	"auth.backend.forward_password":          false,
	"auth.lockout.threshold":                 5,
	"auth.lockout.delay":                     "1s",
	"auth.lockout.max_delay":                 "30s",
	"auth.lockout.lock_after":                10,
	"auth.lockout.lock_for":                  "15m",
	"auth.lockout.window":                    "15m",
	"auth.lockout.max_users":                 100000,
	"auth.local.users_file":                  "",
	"auth.local.max_concurrent_checks":       0,
	"auth.local.watch_interval":              "5s",
	"auth.local.password_policy.min_length":  12,
	"auth.local.password_policy.min_classes": 3,
	"auth.local.password_policy.history":     5,
	"auth.local.password_policy.max_age":     "0s",
	"auth.local.password_policy.warn_before": "336h",
	"auth.ldap.url":                          []string{},
	"auth.ldap.start_tls":                    false,
	"auth.ldap.ca_file":                      "",
	"auth.ldap.server_name":                  "",
	"auth.ldap.insecure_skip_verify":         false,
	"auth.ldap.allow_cleartext":              false,
	"auth.ldap.bind_dn_template":             "",
	"auth.ldap.base_dn":                      "",
	"auth.ldap.bind_dn":                      "",
	"auth.ldap.bind_password_file":           "",
	"auth.ldap.user_filter":                  "(&(objectClass=person)(uid=%s))",
	"auth.ldap.user_attribute":               "uid",
	"auth.ldap.group_attribute":              "memberOf",
	"auth.ldap.group_base_dn":                "",
	"auth.ldap.group_filter":                 "", // ldap.DefaultGroupFilter; set only with group_base_dn
	"auth.ldap.group_name_attribute":         "cn",
	"auth.ldap.dial_timeout":                 "5s",
	"auth.ldap.timeout":                      "5s",
	"auth.ldap.pool_size":                    4,
	"auth.ldap.max_connections":              16,
	"auth.token.issuer":                      "",
	"auth.token.audience":                    "",
	"auth.token.jwks_file":                   "",
	"auth.token.discovery":                   false,
	"auth.token.allow_http":                  false,
	"auth.token.ca_file":                     "",
	"auth.token.user_claim":                  "preferred_username",
	"auth.token.groups_claim":                "groups",
	"auth.token.algorithms":                  []string{},
	"auth.token.leeway":                      "30s",
	"auth.token.http_timeout":                "10s",
	"auth.token.jwks_min_age":                "10s",
	"auth.token.max_token_size":              8192,
	"auth.token.ignore_user":                 false,
}

func init() {
	for k, v := range authDefaults {
		defaults[k] = v
	}
}

// authSetup is the checked auth section: what cmdRun builds the
// authenticator from.
type authSetup struct {
	mode           string
	providers      []string
	defaultFactors []string
	groups         []auth.Group
	backendUser    string
	backendPass    string
	forward        bool
	lockout        policy.LockoutPolicy
	replay         totp.ReplayStore                        // used TOTP codes shared by a fleet; nil: this process's memory
	shareLockout   func(local auth.Throttle) auth.Throttle // a fleet's lockout over the local one; nil: local only
	providerSetup
}

// gateway says whether the gateway decides logins itself.
func (a *authSetup) gateway() bool { return a != nil && a.mode == modeGateway }

// knownFactors are the factor names the configuration may use.
var knownFactors = []string{auth.FactorPassword, auth.FactorToken, auth.FactorTOTP, auth.FactorClientCert}

// checkFactors reports factor lists that name unknown factors or none that
// the gateway could check first.
func checkFactors(p *problems, key string, fs []string) {
	for _, f := range fs {
		if !slices.Contains(knownFactors, f) {
			p.add(key, fmt.Errorf("%q is not a factor (want %s)", f, strings.Join(knownFactors, ", ")))
			return
		}
	}
	if len(fs) > 0 && !slices.Contains(fs, auth.FactorPassword) && !slices.Contains(fs, auth.FactorToken) &&
		!slices.Contains(fs, auth.FactorClientCert) {
		p.add(key, errors.New("needs password, token or client_cert: a one-time code alone is not a login"))
	}
}

// secret reads a secret from a file (trailing newline trimmed) or an
// environment variable; key names the setting for errors. Both empty is
// "", nil. The secret never appears in an error.
func secret(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("set a file or an environment variable, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("%s is empty", file)
		}
		return s, nil
	case env != "":
		if strings.HasPrefix(strings.ToUpper(env), "FTPSGATE_") {
			return "", fmt.Errorf("%s: FTPSGATE_ variables are configuration keys; name the secret's variable otherwise", env)
		}
		s, ok := os.LookupEnv(env)
		if !ok || s == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return s, nil
	}
	return "", nil
}

// secretKey names the setting a secret's problem is about: prefix+"_env"
// when only the environment variable is set, else prefix+"_file".
func secretKey(prefix, file, env string) string {
	if file == "" && env != "" {
		return prefix + "_env"
	}
	return prefix + "_file"
}

// buildAuth checks the auth section.
func buildAuth(p *problems, f authFile) *authSetup {
	a := &authSetup{mode: f.Mode, defaultFactors: f.DefaultFactors, backendUser: f.Backend.User, forward: f.Backend.ForwardPassword}
	switch f.Mode {
	case modePassthrough, modeGateway:
	default:
		p.add("auth.mode", fmt.Errorf("%q is not a mode (want passthrough or gateway)", f.Mode))
		return a
	}
	checkFactors(p, "auth.default_factors", f.DefaultFactors)
	pass, err := secret(f.Backend.PasswordFile, f.Backend.PasswordEnv)
	p.add(secretKey("auth.backend.password", f.Backend.PasswordFile, f.Backend.PasswordEnv), err)
	a.backendPass = pass
	if f.Backend.ForwardPassword && pass != "" {
		p.add("auth.backend.forward_password", errors.New("conflicts with auth.backend.password_file/password_env: the backend gets one password"))
	}
	seen := map[string]bool{}
	for i, g := range f.Groups {
		key := confkey.Join("auth.groups", fmt.Sprintf("[%d]", i))
		if g.Name == "" {
			p.add(key+".name", errors.New("required"))
		} else if seen[g.Name] {
			p.add(key+".name", fmt.Errorf("group %q appears twice", g.Name))
		}
		seen[g.Name] = true
		checkFactors(p, key+".factors", g.Factors)
		gp, err := secret(g.BackendPasswordFile, g.BackendPasswordEnv)
		p.add(secretKey(key+".backend_password", g.BackendPasswordFile, g.BackendPasswordEnv), err)
		a.groups = append(a.groups, auth.Group{Name: g.Name, Factors: g.Factors, BackendUser: g.BackendUser, BackendPassword: gp})
	}
	lo := f.Lockout
	a.lockout = policy.LockoutPolicy{
		Threshold: lo.Threshold, LockAfter: lo.LockAfter, MaxUsers: lo.MaxUsers,
		Delay:    optDuration(p, "auth.lockout.delay", lo.Delay),
		MaxDelay: optDuration(p, "auth.lockout.max_delay", lo.MaxDelay),
		LockFor:  optDuration(p, "auth.lockout.lock_for", lo.LockFor),
		Window:   optDuration(p, "auth.lockout.window", lo.Window),
	}
	p.addNew(under("auth.lockout", a.lockout.Validate()))
	a.providers = f.Providers
	if f.Mode == modePassthrough {
		if len(f.Providers) > 0 || len(f.Groups) > 0 {
			p.add("auth.mode", errors.New("providers and groups need auth.mode gateway (passthrough leaves logins to the backend)"))
		}
		return a
	}
	a.providerSetup = buildProviders(p, f.providerFiles, f.Providers)
	return a
}

// warnings lists the auth settings that weaken a safe default.
func (a *authSetup) warnings() []proxy.Warning {
	if a == nil {
		return nil
	}
	var ws []proxy.Warning
	add := func(key, text string) { ws = append(ws, proxy.Warning{Key: key, Text: text}) }
	if !a.gateway() {
		return nil
	}
	if a.forward {
		add("auth.backend.forward_password", "the client's own password is sent to the backend: the backend learns the edge credentials (a migration aid)")
	}
	if c := a.local; c != nil {
		d := local.DefaultPolicy()
		if c.Policy.MinLength < d.MinLength {
			add("auth.local.password_policy.min_length", fmt.Sprintf("passwords shorter than %d characters are allowed", d.MinLength))
		}
		if c.Policy.MinClasses < d.MinClasses {
			add("auth.local.password_policy.min_classes", fmt.Sprintf("passwords may use fewer than %d character classes", d.MinClasses))
		}
		if c.Policy.History == 0 {
			add("auth.local.password_policy.history", "password reuse is not checked: a user may set the same password again")
		}
		if c.MaxConcurrent > runtime.NumCPU() {
			add("auth.local.max_concurrent_checks", "more password checks may run at once than there are CPUs (64 MiB each): a login flood can take the CPU and memory")
		}
	}
	if c := a.ldap; c != nil {
		if c.AllowCleartext {
			add("auth.ldap.allow_cleartext", "LDAP over ldap:// without StartTLS: passwords cross the network in clear text")
		}
		if c.InsecureSkipVerify {
			add("auth.ldap.insecure_skip_verify", "the directory's certificate is not verified: a man in the middle reads every LDAP password")
		}
	}
	if c := a.token; c != nil {
		if c.AllowHTTP {
			add("auth.token.allow_http", "the issuer's keys are fetched over plain http: anyone on the path can substitute keys and mint tokens")
		}
		if c.IgnoreUser {
			add("auth.token.ignore_user", "USER is not checked against the token: the name logged before PASS may not be who logs in")
		}
	}
	return ws
}
