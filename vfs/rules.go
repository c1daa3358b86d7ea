package vfs

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// PathRule is one entry of a profile's paths: on the virtual paths Path
// matches, the operations in Allow are granted and those in Deny refused.
type PathRule struct {
	Path  string   // a path glob (see glob.go)
	Allow []string // operation names: list, read, write, delete, rename, mkdir
	Deny  []string
}

// Decision is a rule's verdict, and which rule made it: Rule names it as a
// configuration key path ("access.profiles.partner.paths[1]"), with a word
// in parentheses when no single rule did ("access.profiles.partner (no
// rule allows write)"). For the command's log line and event.
type Decision struct {
	Allowed bool
	Rule    string
}

// Section is the configuration key of the access section: Decision.Rule
// names rules below it.
const Section = "access"

var (
	allowAll = Decision{Allowed: true, Rule: "(unconfined)"}
	// ErrRule: a rule of the configuration that does not compile.
	ErrRule = errors.New("vfs: invalid rule")
)

// rules is a profile's rules, compiled.
type rules struct {
	key        string // "access.profiles.NAME"
	paths      []pathRule
	denyNames  []globSeg
	allowNames []globSeg
	commands   map[string]bool // nil: every verb
	site       map[string]bool // nil: every SITE subcommand policy allows
}

type pathRule struct {
	g           glob
	allow, deny Op
}

// compileRules compiles p's rules; the errors' keys are relative to the
// profile ("paths[0].path").
func compileRules(key string, p *Profile) (*rules, error) {
	r := &rules{key: key}
	var errs []error
	for i, pr := range p.Paths {
		k := fmt.Sprintf("paths[%d]", i)
		g, err := compilePathGlob(pr.Path)
		if err != nil {
			errs = append(errs, confkey.Errorf(k+".path", "%q: %w", pr.Path, err))
		}
		allow, err := parseOps(pr.Allow)
		if err != nil {
			errs = append(errs, confkey.New(k+".allow", err))
		}
		deny, err := parseOps(pr.Deny)
		if err != nil {
			errs = append(errs, confkey.New(k+".deny", err))
		}
		if err == nil && allow&deny != 0 {
			errs = append(errs, confkey.Errorf(k, "%s both allowed and denied", allow&deny))
		}
		if len(pr.Allow) == 0 && len(pr.Deny) == 0 {
			errs = append(errs, confkey.Errorf(k, "names no operation (set allow or deny)"))
		}
		r.paths = append(r.paths, pathRule{g: g, allow: allow, deny: deny})
	}
	names := func(k string, list []string) []globSeg {
		var out []globSeg
		for i, s := range list {
			g, err := compileNameGlob(s)
			if err != nil {
				errs = append(errs, confkey.Errorf(fmt.Sprintf("%s[%d]", k, i), "%q: %w", s, err))
			}
			out = append(out, g)
		}
		return out
	}
	r.denyNames = names("deny_names", p.DenyNames)
	r.allowNames = names("allow_names", p.AllowNames)
	if len(p.Commands) > 0 {
		r.commands = map[string]bool{}
		for i, v := range p.Commands {
			u := canonVerb(strings.ToUpper(strings.TrimSpace(v)))
			if !knownVerbs[u] {
				errs = append(errs, confkey.Errorf(fmt.Sprintf("commands[%d]", i), "%q is not an FTP command the gateway relays", v))
			}
			r.commands[u] = true
		}
	}
	if len(p.Site) > 0 {
		r.site = map[string]bool{}
		for i, s := range p.Site {
			u := strings.ToUpper(strings.TrimSpace(s))
			if u == "" || strings.ContainsAny(u, " \t") || checkBytes(u) != nil {
				errs = append(errs, confkey.Errorf(fmt.Sprintf("site[%d]", i), "%q is not a SITE subcommand", s))
			}
			r.site[u] = true
		}
		if r.commands != nil && !r.commands["SITE"] {
			errs = append(errs, confkey.Errorf("site", "SITE is not in commands: no SITE subcommand can pass"))
		}
	}
	return r, errors.Join(errs...)
}

// parseOps reads operation names.
func parseOps(names []string) (Op, error) {
	var op Op
	for _, n := range names {
		o, ok := ParseOp(strings.ToLower(strings.TrimSpace(n)))
		if !ok {
			return 0, fmt.Errorf("%q is not an operation (want list, read, write, delete, rename or mkdir)", n)
		}
		op |= o
	}
	return op, nil
}

// CheckPath decides op on a virtual path (from Resolve). A nil policy, or a
// profile without path rules, allows every operation. Otherwise the first
// rule that names op and whose glob matches decides; what no rule allows is
// refused. With several operations in op, each must be allowed.
//
// Case: a rule's deny matches case-insensitively, its allow only with the
// case as written. Whatever the backend makes of case, a deny cannot be
// dodged by writing /OUTGOING for /outgoing, and an allow grants no other
// directory than the one named.
func (p *Policy) CheckPath(op Op, virtual string) Decision {
	if p == nil || p.rules == nil || len(p.rules.paths) == 0 {
		return allowAll
	}
	clean, err := Resolve("/", virtual)
	if err != nil {
		return Decision{Rule: p.rules.key + " (path not allowed)"}
	}
	segs := segments(clean)
	if op == 0 {
		return Decision{Rule: p.rules.key + " (no operation)"}
	}
	var last Decision
	for _, one := range opNames {
		if op&one.op == 0 {
			continue
		}
		last = p.rules.checkOne(one.op, segs)
		if !last.Allowed {
			return last
		}
	}
	return last
}

func (r *rules) checkOne(op Op, segs []string) Decision {
	for i, pr := range r.paths {
		if pr.deny&op != 0 && pr.g.match(segs, true) {
			return Decision{Rule: fmt.Sprintf("%s.paths[%d]", r.key, i)}
		}
		if pr.allow&op != 0 && pr.g.match(segs, false) {
			return Decision{Allowed: true, Rule: fmt.Sprintf("%s.paths[%d]", r.key, i)}
		}
	}
	return Decision{Rule: fmt.Sprintf("%s (no rule allows %s)", r.key, op)}
}

// CheckName applies the file-name filters to the last segment of a
// virtual path that op creates: call it for the target of an upload (STOR,
// STOU when it names one, APPE: OpWrite), of a rename (RNTO: OpRename) and
// for MKD (OpMkdir); other operations are allowed. deny_names refuses a
// match; allow_names, when set, refuses every name that matches none of
// its globs (it does not apply to MKD: directories are not files of a type;
// it does apply to RNTO, which may rename a directory too).
//
// Names match case-insensitively: on a Windows (NTFS, SMB) backend
// "EVIL.EXE" is "evil.exe", so a case-sensitive "*.exe" would let it
// through. For the same reason a name is also checked without its trailing
// dots and spaces (Windows drops them: "evil.exe." is stored as
// "evil.exe"), and without what follows its first colon (NTFS writes
// "evil.exe::$DATA" and "evil.exe:x" to the file evil.exe). A deny filter
// refuses the name when any of these forms matches; an allow filter passes
// it only when all of them match (under allow_names a name with a colon
// mostly fails: its part before the colon must match too).
func (p *Policy) CheckName(op Op, virtual string) Decision {
	if p == nil || p.rules == nil {
		return allowAll
	}
	r := p.rules
	if op&(OpWrite|OpRename|OpMkdir) == 0 {
		return Decision{Allowed: true, Rule: r.key + " (names not filtered for " + op.String() + ")"}
	}
	if len(r.denyNames) == 0 && len(r.allowNames) == 0 {
		return Decision{Allowed: true, Rule: r.key + " (no name filter)"}
	}
	clean, err := Resolve("/", virtual)
	if err != nil {
		return Decision{Rule: r.key + " (path not allowed)"}
	}
	if clean == "/" {
		return Decision{Allowed: true, Rule: r.key + " (no name)"}
	}
	forms := nameForms(path.Base(clean))
	for i, g := range r.denyNames {
		for _, f := range forms {
			if g.matchString(f, true) {
				return Decision{Rule: fmt.Sprintf("%s.deny_names[%d]", r.key, i)}
			}
		}
	}
	if len(r.allowNames) == 0 || op&(OpWrite|OpRename) == 0 {
		return Decision{Allowed: true, Rule: r.key + ".deny_names (none matches)"}
	}
	rule := ""
	for _, f := range forms {
		i := slices.IndexFunc(r.allowNames, func(g globSeg) bool { return g.matchString(f, true) })
		if i < 0 {
			return Decision{Rule: r.key + ".allow_names (none matches)"}
		}
		if rule == "" {
			rule = fmt.Sprintf("%s.allow_names[%d]", r.key, i)
		}
	}
	return Decision{Allowed: true, Rule: rule}
}

// nameForms are the forms of a name a backend may store: as sent, without
// trailing dots and spaces, and the part before the first colon (an NTFS
// stream's file), also trimmed. Never empty.
func nameForms(name string) []string {
	forms := []string{name}
	add := func(s string) {
		if !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	if t := strings.TrimRight(name, ". "); t != "" {
		add(t)
	}
	if before, _, ok := strings.Cut(name, ":"); ok {
		// Even an empty one: ":x.csv" is no file named *.csv.
		add(before)
		add(strings.TrimRight(before, ". "))
	}
	return forms
}
