package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// readmeConfigTable returns the default column of the configuration
// reference's table (docs/configuration.md) by key (a row may name several
// keys).
func readmeConfigTable(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Keys\n")
	if !ok {
		t.Fatal("docs/configuration.md has no Keys section")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	keyRE := regexp.MustCompile("`([a-z0-9_\\[\\].]+)`")
	rows := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, " | ")
		if len(cells) < 3 {
			t.Fatalf("README row with fewer than three cells: %q", line)
		}
		for _, m := range keyRE.FindAllStringSubmatch(strings.TrimPrefix(cells[0], "| "), -1) {
			rows[m[1]] = strings.TrimSpace(cells[1])
		}
	}
	return rows
}

// The defaults map is the one table of defaults: every key in it has its row
// in docs/configuration.md with the same default, and every scalar key there
// is in it (that is also what makes its FTPSGATE_ variable work).
func TestDefaultsMatchREADME(t *testing.T) {
	rows := readmeConfigTable(t)
	// The README describes these defaults in words: empty means a built-in set.
	described := map[string]bool{"tls.cipher_suites": true, "tls.curves": true}
	for key, def := range defaults {
		cell, ok := rows[key]
		if !ok {
			t.Errorf("%s: in the defaults map, not in docs/configuration.md", key)
			continue
		}
		if described[key] {
			continue
		}
		want := []string{fmt.Sprintf("`%v`", def)}
		switch d := def.(type) {
		case string:
			want = append(want, fmt.Sprintf("`%q`", d))
			if d == "" {
				want = append(want, "(required)")
			}
		case []string:
			want = []string{"`[]`"}
		}
		found := false
		for _, w := range want {
			found = found || strings.HasPrefix(cell, w)
		}
		if !found {
			t.Errorf("%s: default %#v, README says %s", key, def, cell)
		}
	}
	for key := range rows {
		if strings.HasPrefix(key, "listeners[") || strings.HasPrefix(key, "auth.groups[") || key == "bans.weights" ||
			strings.HasPrefix(key, "inspect.dlp.patterns[") ||
			strings.HasPrefix(key, "backends[") || strings.HasPrefix(key, "pools[") || strings.HasPrefix(key, "routing.rules[") ||
			strings.HasPrefix(key, "agents.groups") ||
			strings.HasPrefix(key, "inspect.policies[") ||
			(strings.HasPrefix(key, "access.") && key != "access.default") {
			continue // lists and maps: no scalar default, no variable
		}
		if _, ok := defaults[key]; !ok {
			t.Errorf("%s: in docs/configuration.md, not in the defaults map", key)
		}
	}
}

// The packages' zero-value fallbacks are the table's values: a Config built
// from the table equals the packages' defaults.
func TestDefaultsMatchPackages(t *testing.T) {
	text := "listeners: [{name: a, address: \"127.0.0.1:2121\", tls: explicit}]\nbackend: {address: \"127.0.0.1:21\"}\n"
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.proxy
	if c.Timeouts != proxy.DefaultTimeouts {
		t.Errorf("timeouts from the table %+v, proxy.DefaultTimeouts %+v", c.Timeouts, proxy.DefaultTimeouts)
	}
	if got := (policy.TLSConfig{}).TicketRotationInterval(); c.TLS.TicketRotation != got {
		t.Errorf("tls.ticket_rotation from the table %v, policy default %v", c.TLS.TicketRotation, got)
	}
	b := c.Bans
	if b.MaxFailures != policy.DefaultMaxFailures || b.Window != policy.DefaultBanWindow || b.Duration != policy.DefaultBanDuration || b.MaxDuration != policy.DefaultBanMax {
		t.Errorf("bans from the table %+v, policy defaults %d %v %v %v", b, policy.DefaultMaxFailures, policy.DefaultBanWindow, policy.DefaultBanDuration, policy.DefaultBanMax)
	}
}
