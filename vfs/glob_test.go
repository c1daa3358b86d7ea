package vfs

import (
	"errors"
	"strings"
	"testing"
)

func TestPathGlob(t *testing.T) {
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"/", "/", true},
		{"/", "/a", false},
		{"/**", "/", true},
		{"/**", "/a/b/c", true},
		{"/incoming/**", "/incoming", true},
		{"/incoming/**", "/incoming/a", true},
		{"/incoming/**", "/incoming/a/b", true},
		{"/incoming/**", "/incomingx", false},
		{"/incoming/**", "/", false},
		{"/incoming", "/incoming/a", false},
		{"/incoming/*", "/incoming", false},
		{"/incoming/*", "/incoming/a", true},
		{"/incoming/*", "/incoming/a/b", false},
		{"/a/**/z", "/a/z", true},
		{"/a/**/z", "/a/b/c/z", true},
		{"/a/**/z", "/a/b/c/y", false},
		{"/a/**/z/**", "/a/b/z/q/r", true},
		{"/**/*.csv", "/x.csv", true},
		{"/**/*.csv", "/a/b/x.csv", true},
		{"/**/*.csv", "/a/b/x.csv/y", false},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"/a?c", "/aéc", true}, // one rune, two bytes
		{"/*", "/", false},
		{"/*", "/x", true},
		{"/d*", "/d", true},
		{"/[ab]", "/[ab]", true}, // no classes
		{"/[ab]", "/a", false},
		{"/a/**/**/b", "/a/b", true},
		{"/x*y*z", "/xAyBz", true},
		{"/x*y*z", "/xAyBzq", false},
	}
	for _, c := range cases {
		g, err := compilePathGlob(c.glob)
		if err != nil {
			t.Errorf("%s: %v", c.glob, err)
			continue
		}
		if got := g.match(segments(c.path), false); got != c.want {
			t.Errorf("%s on %s = %v, want %v", c.glob, c.path, got, c.want)
		}
	}
}

func TestPathGlobFold(t *testing.T) {
	g, _ := compilePathGlob("/Outgoing/**")
	if g.match(segments("/OUTGOING/x"), false) {
		t.Error("exact match ignored case")
	}
	if !g.match(segments("/OUTGOING/x"), true) || !g.match(segments("/outgoing"), true) {
		t.Error("folded match saw case")
	}
	// The Kelvin sign folds with k, the long s with s.
	n, _ := compileNameGlob("*.sk")
	if !n.matchString("X.\u017f\u212a", true) {
		t.Error("fold orbit not used")
	}
}

func TestBadGlobs(t *testing.T) {
	for _, s := range []string{"", "incoming/**", "/a//b", "/a/", "/a/../b", "/./a", "/a**", "/**b/c", "/a\\b", "/a\x00", "/\xff"} {
		if _, err := compilePathGlob(s); !errors.Is(err, errGlob) {
			t.Errorf("path glob %q: err %v, want errGlob", s, err)
		}
	}
	for _, s := range []string{"", "a/b", "**", "x**", "a\\b", "\x01"} {
		if _, err := compileNameGlob(s); !errors.Is(err, errGlob) {
			t.Errorf("name glob %q: err %v, want errGlob", s, err)
		}
	}
}

// FuzzGlob: compiling and matching never panic, and "**" keeps its
// meaning: a path a glob matches is matched by glob+"/**", and so is every
// path below it; "/**" matches every path; a glob without wildcards
// matches exactly itself; a case-folded match holds wherever an exact one
// does.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{{"/incoming/**", "/incoming/a"}, {"/a/*/c", "/a/b/c"}, {"/**/x?", "/q/xy"}, {"/", "/"}, {"/É*", "/éx"}} {
		f.Add(s[0], s[1], "seg")
	}
	f.Fuzz(func(t *testing.T, pattern, p, seg string) {
		g, err := compilePathGlob(pattern)
		virtual, perr := Resolve("/", p)
		if perr != nil {
			return
		}
		segs := segments(virtual)
		if err != nil {
			return
		}
		exact := g.match(segs, false)
		if exact && !g.match(segs, true) {
			t.Fatalf("%q matches %q exactly but not folded", pattern, virtual)
		}
		all, _ := compilePathGlob("/**")
		if !all.match(segs, false) {
			t.Fatalf("/** does not match %q", virtual)
		}
		suffix := "/**"
		if pattern == "/" {
			suffix = "**"
		}
		sub, err := compilePathGlob(pattern + suffix)
		if err != nil {
			if strings.HasSuffix(pattern, "**") || strings.HasSuffix(pattern, "*") {
				return // "/a*" + "/**" is fine, "/a**" is not; "/**/**" collapses
			}
			t.Fatalf("%q compiles, %q does not: %v", pattern, pattern+suffix, err)
		}
		if exact && !sub.match(segs, false) {
			t.Fatalf("%q matches %q, %q does not", pattern, virtual, pattern+suffix)
		}
		if below, err := Resolve(virtual, seg); err == nil && strings.HasPrefix(below, strings.TrimSuffix(virtual, "/")+"/") {
			if exact && !sub.match(segments(below), false) {
				t.Fatalf("%q matches %q, %q does not match %q below it", pattern, virtual, pattern+suffix, below)
			}
		}
		if !strings.ContainsAny(pattern, "*?") && exact != (pattern == virtual) {
			t.Fatalf("literal %q on %q: %v", pattern, virtual, exact)
		}
	})
}
