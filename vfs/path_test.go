package vfs

import (
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	cases := []struct {
		cwd, arg, want string
		err            error
	}{
		{"/", "", "/", nil},
		{"/in", "", "/in", nil},
		{"/", "a", "/a", nil},
		{"/in", "a/b", "/in/a/b", nil},
		{"/in", "/out/x", "/out/x", nil},
		{"/in", "./a/./b/", "/in/a/b", nil},
		{"/in", "a//b///c", "/in/a/b/c", nil},
		{"/in", "..", "/", nil},
		{"/in", "../out", "/out", nil},
		{"/a/b", "../../c", "/c", nil},
		{"/", "a/../b", "/b", nil},
		{"/", "...", "/...", nil},
		{"/", "..a", "/..a", nil},
		{"/", "~", "/~", nil},
		{"/", "~root/x", "/~root/x", nil},
		{"/", "über/файл.csv", "/über/файл.csv", nil},
		{"/", "*.csv", "/*.csv", nil},
		{"", "x", "/x", nil},
		// escapes
		{"/", "..", "", ErrEscape},
		{"/", "../x", "", ErrEscape},
		{"/in", "../../x", "", ErrEscape},
		{"/", "/..", "", ErrEscape},
		{"/", "/../etc/passwd", "", ErrEscape},
		{"/", "a/../../b", "", ErrEscape},
		{"/a", "/a/../..", "", ErrEscape},
		// bytes a backend could read otherwise
		{"/", `..\x`, "", ErrBadPath},
		{"/", `a\..\..\b`, "", ErrBadPath},
		{"/", "a\x00b", "", ErrBadPath},
		{"/", "a\r\nDELE x", "", ErrBadPath},
		{"/", "a\x7f", "", ErrBadPath},
		{"/", "\xc0\xae\xc0\xae/x", "", ErrBadPath}, // overlong "."
		{"/", "\xc0\xaf", "", ErrBadPath},           // overlong "/"
		{"/", "\xff", "", ErrBadPath},
		{"/", "/" + strings.Repeat("a", MaxPath), "", ErrBadPath},
	}
	for _, c := range cases {
		got, err := Resolve(c.cwd, c.arg)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("Resolve(%q, %q) = %q, %v; want %q, %v", c.cwd, c.arg, got, err, c.want, c.err)
		}
	}
}

func TestRoot(t *testing.T) {
	r, err := NewRoot("/partners//acme/")
	if err != nil {
		t.Fatal(err)
	}
	if r.Dir() != "/partners/acme" || !r.Confined() {
		t.Fatalf("root %q", r.Dir())
	}
	for v, b := range map[string]string{"/": "/partners/acme", "/in/x.csv": "/partners/acme/in/x.csv"} {
		if got := r.ToBackend(v); got != b {
			t.Errorf("ToBackend(%q) = %q, want %q", v, got, b)
		}
	}
	from := []struct {
		b, v string
		ok   bool
	}{
		{"/partners/acme", "/", true},
		{"/partners/acme/", "/", true},
		{"/partners/acme/in/x", "/in/x", true},
		{"/partners/acme/in/../x", "/x", true},
		{"/partners/acmecorp/x", "", false},
		{"/partners", "", false},
		{"/partners/acme/..", "", false},
		{"/etc/passwd", "", false},
		{"relative/x", "", false},
		{"", "", false},
	}
	for _, c := range from {
		v, ok := r.FromBackend(c.b)
		if v != c.v || ok != c.ok {
			t.Errorf("FromBackend(%q) = %q, %v; want %q, %v", c.b, v, ok, c.v, c.ok)
		}
	}
	for _, bad := range []string{"relative", "/a/../..", `/a\b`} {
		if _, err := NewRoot(bad); err == nil {
			t.Errorf("NewRoot(%q) accepted", bad)
		}
	}
	var none Root
	if none.Confined() || none.Dir() != "/" || none.ToBackend("/x") != "/x" {
		t.Error("the zero Root is not the backend's /")
	}
	if u, _ := NewRoot("/"); u.Confined() {
		t.Error(`NewRoot("/") confines`)
	}
}

func TestQuote257(t *testing.T) {
	for _, p := range []string{"/", `/a "b"`, `/""`, "/über"} {
		q := Quote257(p)
		got, rest, ok := Parse257(" " + q + " is the current directory")
		if !ok || got != p || rest != " is the current directory" {
			t.Errorf("Parse257(Quote257(%q)=%s) = %q, %q, %v", p, q, got, rest, ok)
		}
	}
	for _, bad := range []string{"", "no quote", `"unterminated`, `""" x`} {
		if p, _, ok := Parse257(bad); ok && bad != `""" x` {
			t.Errorf("Parse257(%q) = %q, accepted", bad, p)
		}
	}
}

// FuzzResolve checks the invariant the confinement rests on: no accepted
// path resolves outside the root, and what Resolve returns is canonical
// (absolute, no ".", "..", empty segment, trailing slash or refused byte)
// and stable (resolving it again gives it back).
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"", "..", "../x", "a/../../b", `..\x`, "/a//b/", "~", "\xc0\xae", "a/./b/.."} {
		f.Add("/in", s)
	}
	f.Fuzz(func(t *testing.T, cwd, arg string) {
		base, err := Resolve("/", cwd)
		if err != nil {
			return
		}
		p, err := Resolve(base, arg)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || (p != "/" && strings.HasSuffix(p, "/")) {
			t.Fatalf("Resolve(%q, %q) = %q: not canonical", base, arg, p)
		}
		for _, s := range strings.Split(p[1:], "/") {
			if p != "/" && (s == "" || s == "." || s == "..") {
				t.Fatalf("Resolve(%q, %q) = %q: segment %q", base, arg, p, s)
			}
		}
		if checkBytes(p) != nil {
			t.Fatalf("Resolve(%q, %q) = %q: refused bytes", base, arg, p)
		}
		if again, err := Resolve("/", p); err != nil || again != p {
			t.Fatalf("Resolve(/, %q) = %q, %v: not stable", p, again, err)
		}
		r, _ := NewRoot("/partners/acme")
		b := r.ToBackend(p)
		if v, ok := r.FromBackend(b); !ok || v != p {
			t.Fatalf("backend %q of %q maps back to %q, %v", b, p, v, ok)
		}
		if b != "/partners/acme" && !strings.HasPrefix(b, "/partners/acme/") {
			t.Fatalf("virtual %q leaves the root as %q", p, b)
		}
	})
}
