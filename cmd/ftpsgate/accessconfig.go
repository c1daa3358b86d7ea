package main

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/viper"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// accessFile is the access section: per-user confinement (package vfs).
//
// Users are a list, not a map: viper lower-cases map keys, so a user
// "Alice" named as a key would become "alice", and the real Alice would
// fall through to her groups' or the default profile. Profile names are
// map keys: they are case-insensitive (lower-cased), and so are the
// references to them.
type accessFile struct {
	Profiles map[string]accessProfileFile `mapstructure:"profiles"`
	Users    []struct {
		User    string `mapstructure:"user"`
		Profile string `mapstructure:"profile"`
	} `mapstructure:"users"`
	Groups []struct {
		Group   string `mapstructure:"group"`
		Profile string `mapstructure:"profile"`
	} `mapstructure:"groups"`
	Default string `mapstructure:"default"`
}

// accessProfileFile is one profile of access.profiles.
type accessProfileFile struct {
	Root  string `mapstructure:"root"`
	Paths []struct {
		Path  string   `mapstructure:"path"`
		Allow []string `mapstructure:"allow"`
		Deny  []string `mapstructure:"deny"`
	} `mapstructure:"paths"`
	DenyNames  []string `mapstructure:"deny_names"`
	AllowNames []string `mapstructure:"allow_names"`
	MaxUpload  string   `mapstructure:"max_upload"`
	Commands   []string `mapstructure:"commands"`
	Site       []string `mapstructure:"site"`
	Limits     struct {
		MaxSessions int      `mapstructure:"max_sessions"`
		Bandwidth   string   `mapstructure:"bandwidth"`
		Networks    []string `mapstructure:"networks"`
		Listeners   []string `mapstructure:"listeners"`
	} `mapstructure:"limits"`
}

func init() {
	defaults["access.default"] = ""
}

// withEmptyProfiles adds the profiles written as {} (no root, no rule: an
// unconfined profile, e.g. for the staff), which viper's Unmarshal drops.
func withEmptyProfiles(v *viper.Viper, f accessFile) accessFile {
	m, _ := v.Get("access.profiles").(map[string]any)
	for name, val := range m {
		if pm, ok := val.(map[string]any); ok && len(pm) == 0 {
			if _, ok := f.Profiles[name]; !ok {
				if f.Profiles == nil {
					f.Profiles = map[string]accessProfileFile{}
				}
				f.Profiles[name] = accessProfileFile{}
			}
		}
	}
	return f
}

// accessContext is what the access section is checked against: the rest
// of the running configuration.
type accessContext struct {
	site      []string // policy.allowed_site_commands
	listeners []string // listeners[].name
	gateway   bool     // auth.mode gateway: users have groups
}

func accessContextOf(l *loaded) accessContext {
	var ac accessContext
	ac.site = l.proxy.Login.AllowedSiteCommands
	for _, ln := range l.proxy.Listeners {
		ac.listeners = append(ac.listeners, ln.Name)
	}
	ac.gateway = l.auth.gateway()
	return ac
}

// buildAccess checks the access section and returns it (nil when it is
// empty: nobody is confined).
func buildAccess(p *problems, f accessFile, ac accessContext) *vfs.Access {
	if len(f.Profiles) == 0 && len(f.Users) == 0 && len(f.Groups) == 0 && f.Default == "" {
		return nil
	}
	lower := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	a := &vfs.Access{Profiles: map[string]vfs.Profile{}, Users: map[string]string{}, Default: lower(f.Default)}
	for name, pf := range f.Profiles {
		pr := vfs.Profile{
			Root: pf.Root, DenyNames: pf.DenyNames, AllowNames: pf.AllowNames, MaxUpload: pf.MaxUpload,
			Commands: pf.Commands, Site: pf.Site,
			Limits: vfs.Limits{MaxSessions: pf.Limits.MaxSessions, Bandwidth: pf.Limits.Bandwidth,
				Networks: pf.Limits.Networks, Listeners: pf.Limits.Listeners},
		}
		for _, r := range pf.Paths {
			pr.Paths = append(pr.Paths, vfs.PathRule{Path: r.Path, Allow: r.Allow, Deny: r.Deny})
		}
		a.Profiles[name] = pr
	}
	for i, u := range f.Users {
		key := fmt.Sprintf("access.users[%d]", i)
		name := lower(u.Profile)
		switch _, known := a.Profiles[name]; {
		case u.User == "":
			p.add(key+".user", errors.New("required"))
		case a.Users[u.User] != "":
			p.add(key+".user", fmt.Errorf("user %q appears twice", u.User))
		case !known:
			p.add(key+".profile", fmt.Errorf("no profile named %q", u.Profile))
		}
		if u.User != "" && a.Users[u.User] == "" {
			a.Users[u.User] = name
		}
	}
	for _, g := range f.Groups {
		a.Groups = append(a.Groups, vfs.GroupProfile{Group: g.Group, Profile: lower(g.Profile)})
	}
	if len(f.Groups) > 0 && !ac.gateway {
		p.add("access.groups", errors.New("needs auth.mode gateway: in passthrough the gateway knows no groups, and their members would get the default profile"))
	}
	// Users were checked above, by their place in the list.
	var errs []error
	for _, e := range confkey.List(a.Validate()) {
		if !strings.HasPrefix(e.Key, "users.") {
			errs = append(errs, e)
		}
	}
	p.add("access", errors.Join(errs...))

	names := make([]string, 0, len(a.Profiles))
	for n := range a.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pr := a.Profiles[n]
		for i, s := range pr.Site {
			if !slices.ContainsFunc(ac.site, func(g string) bool { return strings.EqualFold(g, strings.TrimSpace(s)) }) {
				p.add(fmt.Sprintf("access.profiles.%s.site[%d]", n, i), fmt.Errorf("SITE %s is not in policy.allowed_site_commands: it is never relayed", strings.ToUpper(s)))
			}
		}
		for i, l := range pr.Limits.Listeners {
			if !slices.Contains(ac.listeners, strings.TrimSpace(l)) {
				p.add(fmt.Sprintf("access.profiles.%s.limits.listeners[%d]", n, i), fmt.Errorf("no listener named %q", l))
			}
		}
	}
	return a
}

// accessReloader re-reads the access section on SIGHUP and swaps it into
// Holder, which the sessions ask at login. The rest of the file is not
// applied: the section is checked against the running configuration
// (listener names, SITE commands, auth mode). A file with problems keeps
// the last good section.
type accessReloader struct {
	path   string
	ac     accessContext
	Holder *vfs.Holder
}

// newAccessReloader holds cfg's access section; path is the configuration
// file it came from.
func newAccessReloader(path string, cfg *loaded) *accessReloader {
	return &accessReloader{path: path, ac: accessContextOf(cfg), Holder: vfs.NewHolder(cfg.access)}
}

// Reload reads the file's access section again and swaps it in.
func (r *accessReloader) Reload() error {
	v := newViper()
	v.SetConfigFile(r.path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read %s: %w", r.path, err)
	}
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var p problems
	a := buildAccess(&p, withEmptyProfiles(v, fc.Access), r.ac)
	if err := p.err(); err != nil {
		return err
	}
	r.Holder.Reload(a)
	return nil
}
