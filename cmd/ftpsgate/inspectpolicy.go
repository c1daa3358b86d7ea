package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/spf13/viper"

	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// inspectPolicyFile is one entry of inspect.policies: the inspection of
// the users and groups it names. Its dlp holds any keys of inspect.dlp;
// each key it leaves out keeps inspect.dlp's value. Its icap holds the
// per-user part of inspect.icap (the servers, timeouts and sizes stay
// inspect.icap's).
type inspectPolicyFile struct {
	Name   string         `mapstructure:"name"`
	Users  []string       `mapstructure:"users"`
	Groups []string       `mapstructure:"groups"`
	DLP    map[string]any `mapstructure:"dlp"`
	ICAP   icapPolicyFile `mapstructure:"icap"`
}

// icapPolicyFile is a policy's icap: unset keys keep inspect.icap's value.
type icapPolicyFile struct {
	Enabled          *bool   `mapstructure:"enabled"`
	Directions       *string `mapstructure:"directions"`
	OnError          *string `mapstructure:"on_error"`
	OverMaxSize      *string `mapstructure:"over_max_size"`
	PartialTransfers *string `mapstructure:"partial_transfers"`
}

// inspectPolicy is one checked entry of inspect.policies.
type inspectPolicy struct {
	name   string
	users  []string
	groups []string
	dlp    *dlp.Config  // nil: no DLP for its users
	icap   *icap.Policy // nil: no ICAP scan for its users
}

// buildInspectPolicies checks inspect.policies. dlpDefault and icapCfg
// are the section's own inspect.dlp and inspect.icap (nil: off), which
// the policies inherit from; gateway says whether users have groups
// (auth.mode gateway).
func buildInspectPolicies(p *problems, v *viper.Viper, f inspectFile, icapCfg *icap.Config, gateway bool) []inspectPolicy {
	if len(f.Policies) == 0 {
		return nil
	}
	base := dlpSettings(v)
	names := map[string]string{}  // policy name -> its key
	users := map[string]string{}  // user -> the key of the policy naming it
	groups := map[string]string{} // group -> the key of the policy naming it
	var out []inspectPolicy
	for i, pf := range f.Policies {
		key := fmt.Sprintf("inspect.policies[%d]", i)
		pol := inspectPolicy{name: pf.Name}
		switch {
		case pf.Name == "":
			p.add(key+".name", errors.New("must be set"))
		case !policyName(pf.Name):
			p.add(key+".name", fmt.Errorf("%q: a policy name holds letters, digits, - and _ only", pf.Name))
		case names[pf.Name] != "":
			p.add(key+".name", fmt.Errorf("%q is also the name of %s", pf.Name, names[pf.Name]))
		default:
			names[pf.Name] = key
		}
		if len(pf.Users) == 0 && len(pf.Groups) == 0 {
			p.add(key+".users", errors.New("name at least one user or group: the policy applies to no one"))
		}
		for j, u := range pf.Users {
			k := fmt.Sprintf("%s.users[%d]", key, j)
			switch u = strings.TrimSpace(u); {
			case u == "":
				p.add(k, errors.New("must not be empty"))
			case users[u] != "":
				p.add(k, fmt.Errorf("user %q is already in %s: a user is in one policy", u, users[u]))
			default:
				users[u] = key
				pol.users = append(pol.users, u)
			}
		}
		if len(pf.Groups) > 0 && !gateway {
			p.add(key+".groups", errors.New("needs auth.mode gateway: in passthrough the gateway knows no groups, and their members would get the default inspection"))
		}
		for j, g := range pf.Groups {
			k := fmt.Sprintf("%s.groups[%d]", key, j)
			switch g = strings.TrimSpace(g); {
			case g == "":
				p.add(k, errors.New("must not be empty"))
			case groups[g] != "":
				p.add(k, fmt.Errorf("group %q is already in %s, which comes first: this entry would never apply", g, groups[g]))
			default:
				groups[g] = key
				pol.groups = append(pol.groups, g)
			}
		}
		pol.dlp = buildPolicyDLP(p, key+".dlp", base, pf.DLP)
		pol.icap = buildPolicyICAP(p, key+".icap", pf.ICAP, icapCfg)
		out = append(out, pol)
	}
	return out
}

// dlpSettings is inspect.dlp as configured, every key with its value
// (the defaults, the file, the environment): what a policy inherits.
func dlpSettings(v *viper.Viper) map[string]any {
	in, _ := v.AllSettings()["inspect"].(map[string]any)
	d, _ := in["dlp"].(map[string]any)
	return d
}

// buildPolicyDLP is a policy's dlp: inspect.dlp with the keys the policy
// sets replaced (in a map, the keys it sets; a list is replaced whole).
func buildPolicyDLP(p *problems, key string, base, over map[string]any) *dlp.Config {
	sub := viper.New()
	if err := sub.MergeConfigMap(map[string]any{"dlp": overlay(base, over)}); err != nil {
		p.add(key, err)
		return nil
	}
	var f inspectFile
	if err := sub.UnmarshalExact(&f); err != nil {
		p.add(key, err)
		return nil
	}
	return buildDLP(p, key, f)
}

// overlay returns base with over's keys laid on it, maps merged key by key
// (keys compared in lower case, as viper does).
func overlay(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[strings.ToLower(k)] = v
	}
	for k, v := range over {
		k = strings.ToLower(k)
		bm, ok1 := out[k].(map[string]any)
		om, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			v = overlay(bm, om)
		}
		out[k] = v
	}
	return out
}

// buildPolicyICAP is a policy's icap: nil when it scans nothing (no
// inspect.icap servers, or enabled: false).
func buildPolicyICAP(p *problems, key string, f icapPolicyFile, c *icap.Config) *icap.Policy {
	setsMore := f.Directions != nil || f.OnError != nil || f.OverMaxSize != nil || f.PartialTransfers != nil
	if c == nil {
		if setsMore || (f.Enabled != nil && *f.Enabled) {
			p.add(key, errors.New("needs inspect.icap.servers: without a server nothing is scanned"))
		}
		return nil
	}
	if f.Enabled != nil && !*f.Enabled {
		return nil
	}
	pol := icap.Policy{Directions: c.Directions, OnError: c.OnError, OverMaxSize: c.OverMaxSize, Partial: c.Partial}
	var err error
	if f.Directions != nil {
		pol.Directions, err = icap.ParseDirections(*f.Directions)
		p.add(key+".directions", err)
	}
	if f.OnError != nil {
		pol.OnError, err = icap.ParseAction(*f.OnError, false)
		p.add(key+".on_error", err)
	}
	if f.OverMaxSize != nil {
		pol.OverMaxSize, err = icap.ParseAction(*f.OverMaxSize, true)
		p.add(key+".over_max_size", err)
	}
	if f.PartialTransfers != nil {
		pol.Partial, err = icap.ParsePartialMode(*f.PartialTransfers)
		p.add(key+".partial_transfers", err)
	}
	return &pol
}

// policyName: a name that stays one word in logs and keys.
func policyName(n string) bool {
	for _, c := range n {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return n != ""
}

// inspectPolicyWarnings lists what a policy weakens against the section's
// own inspection: DLP or ICAP off for its users, and the weakening
// settings of its dlp and icap not already warned about for inspect.dlp
// and inspect.icap.
func inspectPolicyWarnings(dlpDefault *dlp.Config, icapCfg *icap.Config, pols []inspectPolicy) []proxy.Warning {
	var ws []proxy.Warning
	seen := map[string]bool{}
	for _, w := range append(inspectWarnings(dlpDefault), icapWarnings(icapCfg)...) {
		seen[w.Text] = true
	}
	for i, pol := range pols {
		key := fmt.Sprintf("inspect.policies[%d]", i)
		if dlpDefault != nil && pol.dlp == nil {
			ws = append(ws, proxy.Warning{Key: key + ".dlp.enabled", Text: fmt.Sprintf("DLP is off for the users and groups of inspection policy %q", pol.name)})
		}
		if icapCfg != nil && pol.icap == nil {
			ws = append(ws, proxy.Warning{Key: key + ".icap.enabled", Text: fmt.Sprintf("ICAP scanning is off for the users and groups of inspection policy %q", pol.name)})
		}
		var own []proxy.Warning
		for _, w := range inspectWarnings(pol.dlp) {
			own = append(own, proxy.Warning{Key: key + ".dlp" + strings.TrimPrefix(w.Key, "inspect.dlp"), Text: w.Text})
		}
		if pol.icap != nil {
			c := *icapCfg
			c.Directions, c.OnError, c.OverMaxSize, c.Partial = pol.icap.Directions, pol.icap.OnError, pol.icap.OverMaxSize, pol.icap.Partial
			for _, w := range icapWarnings(&c) {
				own = append(own, proxy.Warning{Key: key + ".icap" + strings.TrimPrefix(w.Key, "inspect.icap"), Text: w.Text})
			}
		}
		for _, w := range own {
			if !seen[w.Text] {
				ws = append(ws, w)
			}
		}
	}
	return ws
}
