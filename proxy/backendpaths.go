package proxy

import (
	"path"
	"strings"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// enterRoot confines a session that has just logged in, if the access
// resolver names a policy for user: the backend moves to the root, the
// session's directory is "/". A user who cannot be confined (a bad name for
// the root's template, a root the backend refuses) loses the session: the
// backend must never serve an unconfined session to a confined user.
func (s *session) enterRoot(user string, groups []string) error {
	if s.env.access == nil {
		return nil
	}
	pol, err := s.env.access.For(user, groups)
	if err != nil {
		s.log.Error().Err(err).Msg("user cannot be confined: closing")
		s.be.quit()
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: your account cannot be set up, ask your administrator.")
		return s.errorf("access: %w", err)
	}
	if pol == nil {
		return nil
	}
	if err := s.applyLimits(pol); err != nil {
		return err
	}
	if !pol.Root.Confined() {
		// A profile without a root (rules only): the session starts where
		// the backend put it, its home, if the backend says where.
		if cwd, ok := s.backendDir(); ok {
			s.confine(pol, cwd)
			return nil
		}
	}
	rep, err := s.ask(ftp.Command{Verb: "CWD", Arg: pol.Root.Dir()})
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Class() != 2 {
		s.log.Error().Str("profile", pol.Profile).Str("root", pol.Root.Dir()).Int(fieldCode, rep.Code).Str("reply", said(rep)).
			Msg("backend refused to enter the user's root: closing")
		s.be.quit()
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: your home directory is not available, ask your administrator.")
		return s.errorf("backend refused root %q: %d", pol.Root.Dir(), rep.Code)
	}
	s.confine(pol, "/")
	return nil
}

func (s *session) confine(pol *vfs.Policy, cwd string) {
	s.vroot = confinement{pol: pol, cwd: cwd}
	s.log = s.log.With().Str("profile", pol.Profile).Logger()
	s.log.Debug().Str("root", pol.Root.Dir()).Str("cwd", cwd).Msg("session confined")
}

// backendDir asks the backend for its current directory (PWD), as a clean
// absolute path; false when it does not answer one.
func (s *session) backendDir() (string, bool) {
	rep, err := s.ask(ftp.Command{Verb: "PWD"})
	if err != nil || rep.Code != ftp.StatusPathCreated {
		return "", false
	}
	p, _, ok := vfs.Parse257(rep.Lines[0])
	if !ok || !strings.HasPrefix(p, "/") {
		return "", false
	}
	clean, err := vfs.Resolve("/", p)
	return clean, err == nil
}

// changeDir relays a confined CWD (CDUP) and moves the session's directory
// when the backend moved.
func (s *session) changeDir(c confined) error {
	rep, err := s.be.Do(s.ctx, c.send, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Class() == 2 {
		s.vroot.cwd = c.virtual[0]
	}
	return s.send(rep)
}

// makeDir relays a confined MKD; the path in its 257 is mapped back, or,
// when it does not map, left out.
func (s *session) makeDir(c confined) error {
	rep, err := s.be.Do(s.ctx, c.send, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Code != ftp.StatusPathCreated {
		return s.send(rep)
	}
	if p, rest, ok := vfs.Parse257(rep.Lines[0]); ok {
		if !strings.HasPrefix(p, "/") {
			p = path.Join(s.vroot.pol.Root.ToBackend(s.vroot.cwd), p)
		}
		if v, ok := s.vroot.pol.Root.FromBackend(p); ok {
			return s.write(ftp.NewReply(ftp.StatusPathCreated, vfs.Quote257(v)+s.hideRootText(rest)))
		}
	}
	return s.write(ftp.NewReply(ftp.StatusPathCreated, "Directory created."))
}

// listFacts relays a confined MLST: the path of its fact line is mapped
// back (a path outside the root becomes the one asked for).
func (s *session) listFacts(c confined) error {
	rep, err := s.be.Do(s.ctx, c.send, s.send)
	if err != nil {
		return s.backendFailed(err)
	}
	out := ftp.Reply{Code: rep.Code, Lines: make([]string, len(rep.Lines))}
	for i, l := range rep.Lines {
		out.Lines[i] = s.hideRootText(l)
		if i == 0 || i == len(rep.Lines)-1 || !strings.HasPrefix(l, " ") {
			continue
		}
		facts, p, ok := strings.Cut(l[1:], " ")
		if !ok || !strings.HasPrefix(p, "/") {
			continue // relative: as the backend named it
		}
		v, ok := s.vroot.pol.Root.FromBackend(p)
		if !ok {
			v = c.virtual[0]
		}
		out.Lines[i] = " " + facts + " " + v
	}
	return s.write(out)
}

// hideRoot replaces, in a backend reply to a confined session, the root
// directory by the virtual path: "250 OK. Current directory is
// /partners/acme/in" becomes "... is /in".
func (s *session) hideRoot(r ftp.Reply) ftp.Reply {
	if s.vroot.pol == nil || !s.vroot.pol.Root.Confined() {
		return r
	}
	out := ftp.Reply{Code: r.Code, Lines: make([]string, len(r.Lines))}
	for i, l := range r.Lines {
		out.Lines[i] = s.hideRootText(l)
	}
	return out
}

func (s *session) hideRootText(text string) string {
	if s.vroot.pol == nil || !s.vroot.pol.Root.Confined() {
		return text
	}
	return hideDir(text, s.vroot.pol.Root.Dir())
}

// hideDir replaces each occurrence of dir in text that stands as a path of
// its own (not inside a longer path or name) by the virtual path: dir
// itself by "/", dir/x by /x.
func hideDir(text, dir string) string {
	var b strings.Builder
	for {
		i := strings.Index(text, dir)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		end := i + len(dir)
		if i > 0 && isPathByte(text[i-1]) || !pathEnds(text[end:]) {
			b.WriteString(text[:end])
			text = text[end:]
			continue
		}
		b.WriteString(text[:i])
		if end == len(text) || text[end] != '/' {
			b.WriteByte('/')
		}
		text = text[end:]
	}
}

// isPathByte: a byte that may continue a path (dir preceded by one is part
// of a longer path).
func isPathByte(c byte) bool {
	return c == '/' || c == '.' || c == '-' || c == '_' || c == '~' ||
		c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= 0x80
}

// pathEnds says whether rest, what follows dir, ends it: nothing, "/", or a
// byte that cannot continue a name ("." only as a sentence's end).
func pathEnds(rest string) bool {
	if rest == "" || rest[0] == '/' {
		return true
	}
	if rest[0] == '.' {
		return len(rest) == 1 || rest[1] == ' '
	}
	return !isPathByte(rest[0])
}
