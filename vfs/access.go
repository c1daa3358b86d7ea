package vfs

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"unicode"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Access is the access section: named profiles, and which users and groups
// they apply to. A user's own entry wins over a group's, the first group
// listed that the user is in wins over later ones, and Default applies to
// everyone else ("" leaves them unconfined).
type Access struct {
	Profiles map[string]Profile // by name
	Users    map[string]string  // user name -> profile name
	Groups   []GroupProfile     // in order: the first that matches applies
	Default  string             // profile name, or ""
}

// GroupProfile gives a group's members a profile.
type GroupProfile struct {
	Group   string
	Profile string
}

// Profile is one named access profile: the virtual root (and, with the
// rules, what may be done inside it).
type Profile struct {
	// Root is the backend directory the user sees as "/"; "%s" stands for
	// the user's name (which must then be a plain path segment). Empty or
	// "/": not confined.
	Root string

	// The rules (rules.go, commands.go, limits.go), as configured: Validate
	// checks them, For compiles them into the Policy.

	// Paths are the path rules, in order; none: every operation allowed.
	Paths []PathRule
	// DenyNames and AllowNames filter the names of uploads, rename targets
	// and new directories (Policy.CheckName).
	DenyNames  []string
	AllowNames []string
	// MaxUpload bounds the bytes of one upload, as a size ("100MiB"); "" or
	// "0": no limit.
	MaxUpload string
	// Commands are the allowed verbs (empty: all; SessionVerbs always
	// pass); Site the allowed SITE subcommands (empty: all that
	// policy.allowed_site_commands allows).
	Commands []string
	Site     []string
	Limits   Limits
}

// Policy is what confines one session, resolved at login. A nil *Policy
// confines nothing: its Check methods allow everything.
type Policy struct {
	Profile string // the profile's name, for the logs
	Root    Root

	// MaxUpload bounds the bytes of one upload (0: no limit): the upload
	// size filter (filter.NewSizeLimit) cuts the transfer past it with 552.
	MaxUpload int64
	// MaxSessions bounds the sessions of one user at once (0: no limit of
	// the profile's own).
	MaxSessions int
	// Bandwidth bounds each session, in bytes per second (0: no limit of
	// the profile's own).
	Bandwidth int64
	// Networks and Listeners are where the user may log in from (empty:
	// anywhere); CheckSource decides.
	Networks  []netip.Prefix
	Listeners []string

	rules *rules
}

// ErrUserName: a user's name cannot stand in a root template (it holds a
// slash or a refused byte, or is "." or "..").
var ErrUserName = errors.New("vfs: user name not usable in a root")

// Validate checks the section, naming the key of each problem.
func (a *Access) Validate() error {
	var errs []error
	names := make([]string, 0, len(a.Profiles))
	for n := range a.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := a.Profiles[n]
		if !profileName(n) {
			errs = append(errs, confkey.Errorf("profiles."+n, "a profile name holds letters, digits, - and _ only"))
		}
		if p.Root != "" {
			if _, err := NewRoot(strings.ReplaceAll(p.Root, "%s", "user")); err != nil {
				errs = append(errs, confkey.Errorf("profiles."+n+".root", "%q: %v", p.Root, err))
			}
		}
		var pol Policy
		if _, err := compileRules("", &p); err != nil {
			errs = append(errs, confkey.Under("profiles."+n, err))
		}
		if err := compileLimits(&pol, &p); err != nil {
			errs = append(errs, confkey.Under("profiles."+n, err))
		}
	}
	known := func(key, name string) {
		if _, ok := a.Profiles[name]; !ok {
			errs = append(errs, confkey.Errorf(key, "no profile named %q", name))
		}
	}
	users := make([]string, 0, len(a.Users))
	for u := range a.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		known("users."+u, a.Users[u])
	}
	for i, g := range a.Groups {
		key := fmt.Sprintf("groups[%d]", i)
		if g.Group == "" {
			errs = append(errs, confkey.Errorf(key+".group", "required"))
		}
		known(key+".profile", g.Profile)
	}
	if a.Default != "" {
		known("default", a.Default)
	}
	return errors.Join(errs...)
}

// For returns the policy for user (with groups), or nil when no profile
// applies. The policy of a profile without root and rules confines
// nothing. An error means the user cannot be confined as configured
// (ErrUserName; ErrRule for a profile Validate would have refused): refuse
// the session.
func (a *Access) For(user string, groups []string) (*Policy, error) {
	if a == nil {
		return nil, nil
	}
	name, ok := a.Users[user]
	if !ok {
		for _, g := range a.Groups {
			if contains(groups, g.Group) {
				name, ok = g.Profile, true
				break
			}
		}
	}
	if !ok {
		name = a.Default
	}
	if name == "" {
		return nil, nil
	}
	p := a.Profiles[name]
	dir := p.Root
	if strings.Contains(dir, "%s") {
		if user == "" || user == "." || user == ".." || strings.Contains(user, "/") || checkBytes(user) != nil {
			return nil, fmt.Errorf("%w: %q", ErrUserName, user)
		}
		dir = strings.ReplaceAll(dir, "%s", user)
	}
	var root Root
	if dir != "" {
		var err error
		if root, err = NewRoot(dir); err != nil {
			return nil, fmt.Errorf("vfs: profile %s: root %q: %w", name, dir, err)
		}
	}
	pol := &Policy{Profile: name, Root: root}
	key := Section + ".profiles." + name
	r, err := compileRules(key, &p)
	if err == nil {
		err = compileLimits(pol, &p)
	}
	if err != nil {
		// Validate reports this first; here it refuses the session.
		return nil, fmt.Errorf("%w: %s: %w", ErrRule, key, err)
	}
	pol.rules = r
	return pol, nil
}

// profileName: a name that stays one segment of a key path
// ("access.profiles.NAME.paths[0]").
func profileName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
