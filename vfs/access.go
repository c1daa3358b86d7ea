package vfs

import (
	"errors"
	"fmt"
	"sort"
	"strings"

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
}

// Policy is what confines one session, resolved at login.
type Policy struct {
	Profile string // the profile's name, for the logs
	Root    Root
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
		if p.Root == "" {
			continue
		}
		if _, err := NewRoot(strings.ReplaceAll(p.Root, "%s", "user")); err != nil {
			errs = append(errs, confkey.Errorf("profiles."+n+".root", "%q: %v", p.Root, err))
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
// applies or the profile confines nothing. An error means the user cannot
// be confined as configured (ErrUserName): refuse the session.
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
	return &Policy{Profile: name, Root: root}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
