package main

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
)

// inspection is one compiled inspect section: the default inspection
// (inspect.dlp, inspect.icap) and the policies chosen per user or group.
type inspection struct {
	dflt    inspectRule
	rules   []inspectRule  // inspect.policies, in order
	byUser  map[string]int // user -> index in rules
	client  *icap.Client   // the ICAP client (nil: no servers), shared by the rules
	icapCfg *icap.Config   // inspect.icap as configured: a reload keeps client when it is the same
}

// inspectRule is what one policy does to a transfer.
type inspectRule struct {
	name   string
	groups []string
	dlp    *dlp.Policy  // nil: no DLP
	icap   *icap.Client // nil: no ICAP scan
}

// pick chooses the inspection of user with groups: the policy naming the
// user, else the first policy naming one of the groups, else the default.
func (in *inspection) pick(user string, groups []string) *inspectRule {
	if i, ok := in.byUser[user]; ok {
		return &in.rules[i]
	}
	for i := range in.rules {
		for _, g := range in.rules[i].groups {
			if slices.Contains(groups, g) {
				return &in.rules[i]
			}
		}
	}
	return &in.dflt
}

// empty reports whether no transfer is ever inspected.
func (in *inspection) empty() bool {
	if in.dflt.dlp != nil || in.dflt.icap != nil {
		return false
	}
	for _, r := range in.rules {
		if r.dlp != nil || r.icap != nil {
			return false
		}
	}
	return true
}

// Filters is the proxy's per-transfer filter hook: the DLP filter, then
// the ICAP scan, of the policy m's user gets.
func (in *inspection) Filters(m filter.Meta) []filter.Filter {
	r := in.pick(m.User, m.Groups)
	var fs []filter.Filter
	if r.dlp != nil {
		if f := r.dlp.Filter(m); f != nil {
			fs = append(fs, f)
		}
	}
	if r.icap != nil {
		fs = append(fs, r.icap.Filters(m)...)
	}
	return fs
}

// compileInspection builds the inspection of a checked configuration;
// findings and verdicts go to sink. old (nil: none) is the inspection it
// replaces: its ICAP client is kept when inspect.icap did not change.
func compileInspection(cfg *loaded, old *inspection, sink events.Sink, log zerolog.Logger) (*inspection, error) {
	in := &inspection{byUser: map[string]int{}, icapCfg: cfg.icap}
	switch {
	case cfg.icap == nil:
	case old != nil && old.icapCfg != nil && reflect.DeepEqual(*old.icapCfg, *cfg.icap):
		in.client = old.client
	default:
		var err error
		if in.client, err = newICAP(cfg.icap, sink, log); err != nil {
			return nil, fmt.Errorf("inspect.icap: %w", err)
		}
	}
	rule := func(key, name string, d *dlp.Config, ip *icap.Policy) (inspectRule, error) {
		r := inspectRule{name: name}
		if d != nil {
			pol, err := dlp.New(*d, nil)
			if err != nil {
				return r, fmt.Errorf("%s: %w", key, err)
			}
			pol.EmitTo(sink)
			r.dlp = pol
		}
		if ip != nil && in.client != nil {
			r.icap = in.client.WithPolicy(*ip)
		}
		return r, nil
	}
	var dflt *icap.Policy
	if in.client != nil {
		p := in.client.Policy()
		dflt = &p
	}
	var err error
	if in.dflt, err = rule("inspect.dlp", "", cfg.inspect, dflt); err != nil {
		return nil, err
	}
	for i, p := range cfg.inspectPolicies {
		r, err := rule(fmt.Sprintf("inspect.policies[%d].dlp", i), p.name, p.dlp, p.icap)
		if err != nil {
			return nil, err
		}
		r.groups = p.groups
		for _, u := range p.users {
			in.byUser[u] = len(in.rules)
		}
		in.rules = append(in.rules, r)
	}
	return in, nil
}

// inspectHolder holds the live inspection: each transfer takes the one
// held when it starts and keeps it to its end; SIGHUP (Reload) swaps in
// the inspect section read again from the configuration file.
type inspectHolder struct {
	cur     atomic.Pointer[inspection]
	mu      sync.Mutex // one Reload at a time
	path    string     // the configuration file; "": embedded, nothing to reload
	gateway bool       // the running auth.mode is gateway: users have groups
	sink    events.Sink
	log     zerolog.Logger
}

// newInspectHolder compiles cfg's inspect section.
func newInspectHolder(cfg *loaded, sink events.Sink, log zerolog.Logger) (*inspectHolder, error) {
	h := &inspectHolder{path: cfg.path, gateway: cfg.auth.gateway(), sink: sink, log: log}
	in, err := compileInspection(cfg, nil, sink, log)
	if err != nil {
		return nil, err
	}
	h.cur.Store(in)
	return h, nil
}

// Filters is the per-transfer hook (proxy.Config.Filters).
func (h *inspectHolder) Filters(m filter.Meta) []filter.Filter { return h.cur.Load().Filters(m) }

// needed reports whether the proxy needs the hook: something is inspected,
// or a reload may turn inspection on.
func (h *inspectHolder) needed() bool { return h.path != "" || !h.cur.Load().empty() }

// client is the ICAP client held now (nil: none).
func (h *inspectHolder) client() *icap.Client { return h.cur.Load().client }

// Reload reads the file's inspect section again and swaps it in. The rest
// of the file is not applied; groups are checked against the running
// auth.mode. A section with problems keeps the last good one.
func (h *inspectHolder) Reload() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := newViper()
	v.SetConfigFile(h.path)
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("read %s: %w", h.path, err)
	}
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	var p problems
	cfg := &loaded{inspect: buildInspect(&p, fc.Inspect), icap: buildICAP(&p, fc.Inspect.ICAP)}
	cfg.inspectPolicies = buildInspectPolicies(&p, v, fc.Inspect, cfg.icap, h.gateway)
	if err := p.err(); err != nil {
		return err
	}
	old := h.cur.Load()
	in, err := compileInspection(cfg, old, h.sink, h.log)
	if err != nil {
		return err
	}
	h.cur.Store(in)
	if old.client != nil && old.client != in.client {
		_ = old.client.Close() // its running scans keep their connections
	}
	return nil
}

// Close closes the ICAP client held now.
func (h *inspectHolder) Close() {
	if c := h.client(); c != nil {
		_ = c.Close()
	}
}
