package local

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mod  func(*Policy)
		want string
	}{
		{func(p *Policy) { p.MinLength = 0 }, "min_length"},
		{func(p *Policy) { p.MinClasses = 5 }, "min_classes"},
		{func(p *Policy) { p.History = -1 }, "history"},
		{func(p *Policy) { p.History = 65 }, "history"},
		{func(p *Policy) { p.MaxAge = -time.Hour }, "max_age"},
		{func(p *Policy) { p.WarnBefore = -time.Hour }, "warn_before"},
		{func(p *Policy) { p.MaxAge = 24 * time.Hour }, "warn_before"},
	} {
		p := DefaultPolicy()
		tc.mod(&p)
		if err := p.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%+v: Validate = %v, want one naming %s", p, err, tc.want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	p := DefaultPolicy()
	for _, tc := range []struct {
		user, pw string
		want     string // "" = accepted
	}{
		{"alice", "Tr0ub4dor&3xy", ""},
		{"alice", "correct horse battery staple", "classes"}, // 2 classes
		{"alice", "Correct horse battery staple", ""},        // lower, upper, other
		{"alice", "Short1!", "shorter than 12"},
		{"alice", "ÄÖÜäöü123456", ""}, // runes, not bytes; upper, lower, digit
		{"alice", "ab\x01CDEFGH1234", "control"},
		{"alice", "xxALICE-2026yy", "user name"},
		{"bob", "Bobby-Tables-1", "user name"},
		{"al", "Always-al-2026", ""}, // names under 3 characters are not looked for
		{"alice", "\xff\xfeAbcdefgh1234", "UTF-8"},
		{"bob", strings.Repeat("Aa1!", 300), "longer than"},
	} {
		err := p.Check(tc.user, tc.pw)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Check(%q) = %v", tc.pw, err)
			}
			continue
		}
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%q) = %v, want %q", tc.pw, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("the error quotes the password: %v", err)
		}
	}
}

func TestPolicyReuse(t *testing.T) {
	p := DefaultPolicy()
	p.History = 2
	h := func(pw string) string {
		s, err := HashPassword(pw, testParams)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cur, h1, h2, h3 := h("current"), h("one"), h("two"), h("three")
	hist := []string{h1, h2, h3}
	for pw, refused := range map[string]bool{"current": true, "one": true, "two": true, "three": false, "new": false} {
		err := p.CheckReuse(pw, cur, hist)
		if refused != (err != nil) {
			t.Errorf("CheckReuse(%s) = %v", pw, err)
		}
	}
	if got := p.NextHistory(cur, hist); len(got) != 2 || got[0] != cur || got[1] != h1 {
		t.Errorf("NextHistory = %v", got)
	}
	p.History = 0
	if p.CheckReuse("current", cur, hist) != nil || p.NextHistory(cur, hist) != nil {
		t.Error("history 0 still checks or keeps history")
	}
}

func TestPolicyExpiry(t *testing.T) {
	p := DefaultPolicy()
	changed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !p.Expires(changed).IsZero() {
		t.Fatal("max_age 0 expires")
	}
	p.MaxAge = 90 * 24 * time.Hour
	exp := p.Expires(changed)
	if !exp.Equal(changed.Add(p.MaxAge)) {
		t.Fatalf("Expires = %v", exp)
	}
	for _, tc := range []struct {
		now  time.Time
		warn bool
	}{
		{exp.Add(-15 * 24 * time.Hour), false},
		{exp.Add(-14 * 24 * time.Hour), true},
		{exp.Add(-time.Second), true},
		{exp, false}, // expired, not warned
	} {
		if got := p.Warn(exp, tc.now); got != tc.warn {
			t.Errorf("Warn at %v = %v", tc.now, got)
		}
	}
	if got := p.Expires(time.Time{}); !got.Before(changed) {
		t.Errorf("an unknown change date does not count as expired: %v", got)
	}
}
