package vfs

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

func TestAccessFor(t *testing.T) {
	a := &Access{
		Profiles: map[string]Profile{
			"partner": {Root: "/partners/%s"},
			"staff":   {Root: "/srv/ftp"},
			"open":    {},
		},
		Users:   map[string]string{"boss": "open"},
		Groups:  []GroupProfile{{Group: "partners", Profile: "partner"}, {Group: "staff", Profile: "staff"}},
		Default: "staff",
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user    string
		groups  []string
		profile string
		root    string
		err     error
	}{
		{"acme", []string{"partners", "staff"}, "partner", "/partners/acme", nil},
		{"bob", []string{"staff"}, "staff", "/srv/ftp", nil},
		{"carol", nil, "staff", "/srv/ftp", nil},
		{"boss", []string{"partners"}, "open", "/", nil},
		{"../etc", []string{"partners"}, "", "", ErrUserName},
		{"a/b", []string{"partners"}, "", "", ErrUserName},
		{"..", []string{"partners"}, "", "", ErrUserName},
		{`a\b`, []string{"partners"}, "", "", ErrUserName},
	}
	for _, c := range cases {
		p, err := a.For(c.user, c.groups)
		if !errors.Is(err, c.err) {
			t.Errorf("For(%q): err %v, want %v", c.user, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if p == nil || p.Profile != c.profile || p.Root.Dir() != c.root {
			t.Errorf("For(%q) = %+v, want profile %s root %s", c.user, p, c.profile, c.root)
		}
	}
	a.Default = ""
	if p, err := a.For("nobody", nil); p != nil || err != nil {
		t.Errorf("no profile: %+v %v", p, err)
	}
	var none *Access
	if p, err := none.For("x", nil); p != nil || err != nil {
		t.Errorf("nil access: %+v %v", p, err)
	}
}

func TestAccessValidate(t *testing.T) {
	a := &Access{
		Profiles: map[string]Profile{"p": {Root: "relative"}, "q": {Root: "/a/../../b"}},
		Users:    map[string]string{"u": "missing"},
		Groups:   []GroupProfile{{Profile: "p"}},
		Default:  "nope",
	}
	var keys []string
	for _, e := range confkey.List(a.Validate()) {
		keys = append(keys, e.Key)
	}
	want := "profiles.p.root profiles.q.root users.u groups[0].group default"
	if strings.Join(keys, " ") != want {
		t.Errorf("keys %q, want %q", strings.Join(keys, " "), want)
	}
}

func TestOps(t *testing.T) {
	if s := (OpRead | OpWrite).String(); s != "read|write" {
		t.Errorf("String %q", s)
	}
	for _, n := range opNames {
		if op, ok := ParseOp(n.name); !ok || op != n.op {
			t.Errorf("ParseOp(%q)", n.name)
		}
	}
	if _, ok := ParseOp("execute"); ok {
		t.Error("ParseOp(execute) accepted")
	}
	if op, ok := VerbOp("RNTO"); !ok || op != OpRename {
		t.Error("RNTO")
	}
	if _, ok := VerbOp("NOOP"); ok {
		t.Error("NOOP names a path")
	}
}
