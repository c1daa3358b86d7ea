package vfs

import (
	"errors"
	"path"
	"strings"
	"unicode/utf8"
)

// Errors of Resolve. Both are refused with 550; ErrEscape also counts as
// abuse.
var (
	// ErrEscape: the path climbs above the virtual root.
	ErrEscape = errors.New("vfs: path leaves the root")
	// ErrBadPath: the path holds a byte no backend reads the same way: a
	// backslash (a separator for some servers), a NUL or another control
	// character, or invalid UTF-8 (an overlong "/" among others).
	ErrBadPath = errors.New("vfs: path not allowed")
)

// MaxPath bounds a resolved virtual path, in bytes.
const MaxPath = 4096

// Resolve turns arg, a path as the client named it (absolute, or relative
// to cwd, the session's current virtual directory), into one clean absolute
// virtual path: "." and empty segments dropped, ".." resolved, no trailing
// slash. An empty arg is cwd. cwd must itself come from Resolve (or be "/").
func Resolve(cwd, arg string) (string, error) {
	if err := checkBytes(arg); err != nil {
		return "", err
	}
	base := cwd
	if strings.HasPrefix(arg, "/") || base == "" {
		base = "/"
	}
	segs := make([]string, 0, strings.Count(base, "/")+strings.Count(arg, "/")+1)
	for _, s := range strings.Split(base, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	for _, s := range strings.Split(arg, "/") {
		switch s {
		case "", ".":
		case "..":
			if len(segs) == 0 {
				return "", ErrEscape
			}
			segs = segs[:len(segs)-1]
		default:
			segs = append(segs, s)
		}
	}
	p := "/" + strings.Join(segs, "/")
	if len(p) > MaxPath {
		return "", ErrBadPath
	}
	return p, nil
}

// checkBytes refuses what a backend might read differently from us.
func checkBytes(s string) error {
	if !utf8.ValidString(s) {
		return ErrBadPath
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return ErrBadPath
		}
	}
	return nil
}

// Root is a virtual root: the backend directory a confined session sees as
// "/". The zero value and "/" confine nothing (virtual paths are backend
// paths), though Resolve still applies.
type Root struct {
	dir string // clean, absolute; "" for "/"
}

// NewRoot returns the root at backend directory dir, which must be absolute
// and valid as Resolve sees it.
func NewRoot(dir string) (Root, error) {
	if !strings.HasPrefix(dir, "/") {
		return Root{}, errors.New("vfs: a root must be an absolute path")
	}
	clean, err := Resolve("/", dir)
	if err != nil {
		return Root{}, err
	}
	if clean == "/" {
		return Root{}, nil
	}
	return Root{dir: clean}, nil
}

// Dir is the backend directory of the root ("/" when unconfined).
func (r Root) Dir() string {
	if r.dir == "" {
		return "/"
	}
	return r.dir
}

// Confined says whether the root is below the backend's own "/".
func (r Root) Confined() bool { return r.dir != "" }

// ToBackend maps a virtual path (from Resolve) to the backend's path.
func (r Root) ToBackend(virtual string) string {
	if r.dir == "" {
		return virtual
	}
	if virtual == "/" {
		return r.dir
	}
	return r.dir + virtual
}

// FromBackend maps a backend path (absolute, as a 257 reply or an MLST
// line names it) to the virtual path, or reports false when it lies
// outside the root (or is not absolute).
func (r Root) FromBackend(backend string) (string, bool) {
	if !strings.HasPrefix(backend, "/") {
		return "", false
	}
	clean := path.Clean(backend)
	if r.dir == "" {
		return clean, true
	}
	switch {
	case clean == r.dir:
		return "/", true
	case strings.HasPrefix(clean, r.dir+"/"):
		return clean[len(r.dir):], true
	}
	return "", false
}

// Quote257 writes path as RFC 959 quotes it in a 257 reply: in double
// quotes, each quote inside doubled.
func Quote257(p string) string {
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
}

// Parse257 reads the quoted path at the start of a 257 reply's text (after
// optional spaces) and returns it with the rest of the text; false when the
// text carries no well-formed quoted path.
func Parse257(text string) (p, rest string, ok bool) {
	s := strings.TrimLeft(text, " ")
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}
