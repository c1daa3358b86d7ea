package vfs

import (
	"errors"
	"strings"
	"unicode"
)

// Globs of path rules and name filters.
//
// A path glob is an absolute virtual path whose segments may hold "*" (any
// run of characters within the segment, none included) and "?" (exactly one
// character); a segment "**" stands for any number of whole segments, none
// included, so "/incoming/**" matches "/incoming" itself and everything
// below it, and "/**" matches every path. There are no character classes:
// "[" and every other character stand for themselves. A name glob is one
// segment without "**".
//
// Matching is on characters (runes), never bytes: "?" never splits a UTF-8
// sequence. It runs in O(len(pattern)·len(path)) time: the one-star
// backtracking of the classic wildcard match, for "*" within a segment and
// for "**" over segments.

// globSeg is one segment of a glob.
type globSeg struct {
	any  bool   // "**": any number of segments
	pat  []rune // with '*' and '?'
	fold []rune // pat case-folded (foldRune)
}

// glob is a compiled path glob.
type glob struct {
	src  string
	segs []globSeg
}

// errGlob is the cause of a refused glob.
var errGlob = errors.New("not a valid glob")

// compilePathGlob compiles a path rule's glob.
func compilePathGlob(s string) (glob, error) {
	if !strings.HasPrefix(s, "/") {
		return glob{}, globErr("must be an absolute path (start with /)")
	}
	if err := checkBytes(s); err != nil {
		return glob{}, globErr("holds a backslash, a control character or invalid UTF-8")
	}
	if len(s) > MaxPath {
		return glob{}, globErr("too long")
	}
	g := glob{src: s}
	if s == "/" {
		return g, nil
	}
	for _, part := range strings.Split(s[1:], "/") {
		switch {
		case part == "":
			return glob{}, globErr("has an empty segment (// or a trailing /): write /dir or /dir/**")
		case part == "." || part == "..":
			return glob{}, globErr(`has a "." or ".." segment: write the path as the client sees it, resolved`)
		case part == "**":
			if n := len(g.segs); n > 0 && g.segs[n-1].any {
				continue // "**/**" is "**"
			}
			g.segs = append(g.segs, globSeg{any: true})
		case strings.Contains(part, "**"):
			return glob{}, globErr(`"**" must be a whole segment (/a/**/b), not part of one`)
		default:
			g.segs = append(g.segs, newGlobSeg(part))
		}
	}
	return g, nil
}

// compileNameGlob compiles a file-name filter: one segment.
func compileNameGlob(s string) (globSeg, error) {
	switch {
	case s == "":
		return globSeg{}, globErr("empty")
	case strings.Contains(s, "/"):
		return globSeg{}, globErr("a name filter matches the last segment only: no /")
	case strings.Contains(s, "**"):
		return globSeg{}, globErr(`"**" has no meaning in a name: use "*"`)
	case checkBytes(s) != nil:
		return globSeg{}, globErr("holds a backslash, a control character or invalid UTF-8")
	}
	return newGlobSeg(s), nil
}

func globErr(why string) error { return errors.Join(errGlob, errors.New(why)) }

func newGlobSeg(s string) globSeg {
	pat := []rune(s)
	return globSeg{pat: pat, fold: foldRunes(pat)}
}

// String is the glob as configured.
func (g glob) String() string { return g.src }

// match reports whether g matches the canonical virtual path's segments
// (none for "/"). fold: case-insensitively.
func (g glob) match(segs []string, fold bool) bool {
	pi, si := 0, 0
	star, starSi := -1, 0
	for si < len(segs) {
		switch {
		case pi < len(g.segs) && g.segs[pi].any:
			star, starSi = pi, si
			pi++
		case pi < len(g.segs) && g.segs[pi].matchString(segs[si], fold):
			pi++
			si++
		case star >= 0:
			// "**" takes one more segment.
			starSi++
			pi, si = star+1, starSi
		default:
			return false
		}
	}
	for pi < len(g.segs) && g.segs[pi].any {
		pi++
	}
	return pi == len(g.segs)
}

func (s globSeg) matchString(name string, fold bool) bool {
	r := []rune(name)
	if fold {
		return matchRunes(s.fold, foldRunes(r))
	}
	return matchRunes(s.pat, r)
}

// matchRunes is the wildcard match of one segment: '*' any run, '?' one
// rune.
func matchRunes(pat, s []rune) bool {
	pi, si := 0, 0
	star, starSi := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pat) && pat[pi] == '*':
			star, starSi = pi, si
			pi++
		case pi < len(pat) && (pat[pi] == '?' || pat[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			starSi++
			pi, si = star+1, starSi
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == '*' {
		pi++
	}
	return pi == len(pat)
}

// foldRune maps r to one representative of its case-folding orbit (the
// smallest rune in it): two runes fold alike exactly when strings.EqualFold
// holds them equal. This is wider than any one backend's folding (NTFS's
// upcase table, SMB, FAT), which errs the safe way for a deny filter.
func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

func foldRunes(rs []rune) []rune {
	out := make([]rune, len(rs))
	for i, r := range rs {
		out[i] = foldRune(r)
	}
	return out
}

// segments splits a canonical virtual path ("/" has none).
func segments(virtual string) []string {
	if virtual == "/" || virtual == "" {
		return nil
	}
	return strings.Split(strings.TrimPrefix(virtual, "/"), "/")
}
