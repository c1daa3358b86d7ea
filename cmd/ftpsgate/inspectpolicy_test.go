package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
)

// gatewayAuthYAML is an auth section in gateway mode (users have groups).
func gatewayAuthYAML(t *testing.T) string {
	return "auth: {mode: gateway, providers: [local], local: {users_file: " + authUsersFile(t) + "}, backend: {user: be, password_file: " + secretFile(t, "pw") + "}}\n"
}

// inspectPoliciesYAML: cards alert by default; alice (by name) and the
// finance group block them; svc is not inspected at all.
const inspectPoliciesYAML = `inspect:
  dlp: {enabled: true, cards: {action: alert}}
  policies:
    - name: strict
      users: [alice]
      dlp: {cards: {action: block}}
    - name: finance
      groups: [finance]
      dlp: {cards: {action: block}, directions: both}
    - name: service
      users: [svc]
      dlp: {enabled: false}
`

// The problems of inspect.policies name their key.
func TestInspectPoliciesProblems(t *testing.T) {
	icapYAML := "  icap: {servers: [icap://127.0.0.1:1344/avscan]}\n"
	gatewayYAML := gatewayAuthYAML(t)
	for _, tt := range []struct{ yaml, key string }{
		{"  policies: [{users: [a]}]\n", "inspect.policies[0].name"},
		{"  policies: [{name: 'a b', users: [a]}]\n", "inspect.policies[0].name"},
		{"  policies: [{name: a, users: [x]}, {name: a, users: [y]}]\n", "inspect.policies[1].name"},
		{"  policies: [{name: a}]\n", "inspect.policies[0].users"},
		{"  policies: [{name: a, users: [x]}, {name: b, users: [y, x]}]\n", "inspect.policies[1].users[1]"},
		{"  policies: [{name: a, groups: [g]}, {name: b, groups: [g]}]\n", "inspect.policies[1].groups[0]"},
		{"  policies: [{name: a, users: [x], dlp: {cards: {action: shout}}}]\n", "inspect.policies[0].dlp.cards.action"},
		{"  policies: [{name: a, users: [x], dlp: {cards: {colour: red}}}]\n", "inspect.policies[0].dlp"},
		{"  policies: [{name: a, users: [x], dlp: {keywords: {enabled: true}}}]\n", "inspect.policies[0].dlp.keywords.words"},
		{"  policies: [{name: a, users: [x], icap: {on_error: allow}}]\n", "inspect.policies[0].icap"},
		{icapYAML + "  policies: [{name: a, users: [x], icap: {on_error: shrug}}]\n", "inspect.policies[0].icap.on_error"},
		{icapYAML + "  policies: [{name: a, users: [x], icap: {directions: up}}]\n", "inspect.policies[0].icap.directions"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+gatewayYAML+"inspect:\n  dlp: {enabled: true}\n"+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+":") {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}
	// Groups need auth.mode gateway: in passthrough nobody has any.
	_, err := loadFile(writeConfig(t, minimalYAML+"inspect:\n  policies: [{name: a, groups: [g]}]\n"))
	if err == nil || !strings.Contains(err.Error(), "inspect.policies[0].groups:") {
		t.Errorf("groups in passthrough: %v", err)
	}
}

// A policy inherits every inspect.dlp key it does not set; users and
// groups choose it, the default applies to the others; a policy may turn
// inspection off, which is a weakening warned about.
func TestInspectPoliciesSelect(t *testing.T) {
	_, err := loadFile(writeConfig(t, minimalYAML+gatewayAuthYAML(t)+inspectPoliciesYAML+
		"  icap: {servers: [icap://127.0.0.1:1344/avscan]}\n"+
		"  policies_extra_never_used: 0\n"))
	if err == nil {
		t.Fatal("unknown key under inspect accepted")
	}
	cfg, err := loadFile(writeConfig(t, minimalYAML+gatewayAuthYAML(t)+strings.Replace(inspectPoliciesYAML, "dlp: {enabled: false}",
		"dlp: {enabled: false}\n      icap: {enabled: false}\n    - name: lax\n      users: [dave]\n      icap: {on_error: allow}", 1)+
		"  icap: {servers: [icap://127.0.0.1:1344/avscan]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.inspectPolicies); n != 4 {
		t.Fatalf("%d policies", n)
	}
	strict, fin := cfg.inspectPolicies[0], cfg.inspectPolicies[1]
	if strict.dlp == nil || strict.dlp.Cards.Action != dlp.Block || strict.dlp.Emails.Threshold != 100 || !strict.dlp.Gzip || strict.dlp.Directions != dlp.Uploads {
		t.Errorf("strict: %+v", strict.dlp)
	}
	if fin.dlp == nil || fin.dlp.Directions != dlp.Both || fin.groups[0] != "finance" {
		t.Errorf("finance: %+v", fin)
	}
	if strict.icap == nil || strict.icap.OnError != icap.Block || cfg.inspectPolicies[2].icap != nil || cfg.inspectPolicies[3].icap.OnError != icap.Allow {
		t.Errorf("icap: %+v %+v %+v", strict.icap, cfg.inspectPolicies[2].icap, cfg.inspectPolicies[3].icap)
	}
	ws := inspectPolicyWarnings(cfg.inspect, cfg.icap, cfg.inspectPolicies)
	keys := map[string]bool{}
	for _, w := range ws {
		keys[w.Key] = true
	}
	for _, k := range []string{"inspect.policies[2].dlp.enabled", "inspect.policies[2].icap.enabled", "inspect.policies[3].icap.on_error"} {
		if !keys[k] {
			t.Errorf("no warning for %s: %+v", k, ws)
		}
	}
	if len(ws) != 4 { // and over_max_size, which follows on_error
		t.Errorf("warnings %+v", ws)
	}

	in, err := compileInspection(cfg, nil, events.Func(func(events.Event) {}), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer in.client.Close()
	for _, tt := range []struct {
		user   string
		groups []string
		want   string
	}{
		{"alice", nil, "strict"},
		{"alice", []string{"finance"}, "strict"}, // her own entry first
		{"bob", nil, ""},
		{"bob", []string{"staff", "finance"}, "finance"},
		{"svc", []string{"finance"}, "service"},
	} {
		if got := in.pick(tt.user, tt.groups).name; got != tt.want {
			t.Errorf("%s %v: policy %q, want %q", tt.user, tt.groups, got, tt.want)
		}
	}
	if fs := in.Filters(filter.Meta{User: "svc", Direction: filter.Upload}); len(fs) != 0 {
		t.Errorf("svc inspected: %v", fs)
	}
	if fs := in.Filters(filter.Meta{User: "bob", Direction: filter.Upload}); len(fs) != 2 {
		t.Errorf("bob: %d filters, want DLP and ICAP", len(fs))
	}
}

// cardsVerdict writes two card numbers through the filters and returns
// whether the upload was vetoed.
func cardsVerdict(t *testing.T, fs []filter.Filter) bool {
	t.Helper()
	c := filter.Chain(fs)
	if err := c.Write([]byte("4111111111111111 5555555555554444\n")); err != nil {
		t.Fatal(err)
	}
	v, err := c.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v.Veto
}

// Reload swaps in the file's new inspect section for the next transfers;
// a transfer started before keeps its policy; a bad section keeps the
// last good one.
func TestInspectReload(t *testing.T) {
	gatewayYAML := gatewayAuthYAML(t)
	path := writeConfig(t, minimalYAML+gatewayYAML+inspectPoliciesYAML)
	cfg, err := loadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newInspectHolder(cfg, events.Func(func(events.Event) {}), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bob := filter.Meta{User: "bob", Direction: filter.Upload}
	started := h.Filters(bob)
	if cardsVerdict(t, h.Filters(bob)) || !cardsVerdict(t, h.Filters(filter.Meta{User: "alice", Direction: filter.Upload})) {
		t.Fatal("before: bob must pass, alice be blocked")
	}
	if err := os.WriteFile(path, []byte(minimalYAML+gatewayYAML+strings.Replace(inspectPoliciesYAML, "users: [alice]", "users: [alice, bob]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	if !cardsVerdict(t, h.Filters(bob)) {
		t.Error("after the reload bob's upload passed")
	}
	if cardsVerdict(t, started) {
		t.Error("a transfer started before the reload changed its policy")
	}
	if err := os.WriteFile(path, []byte(minimalYAML+gatewayYAML+strings.Replace(inspectPoliciesYAML, "users: [svc]", "users: [alice]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil || !strings.Contains(err.Error(), "inspect.policies[2].users[0]") {
		t.Fatalf("bad section: %v", err)
	}
	if !cardsVerdict(t, h.Filters(bob)) {
		t.Error("a failed reload changed the inspection")
	}
}
