package proxy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// Confinement (WithAccess): once a confined user has logged in, the backend
// sits in the user's root (CWD root) and the session keeps its own current
// virtual directory. Every command that names a path goes through
// confinePath, the one place that maps client paths to backend paths:
//
//   - the path is resolved against the session's directory (vfs.Resolve):
//     a path above the root gets 550 and counts as abuse (path_escape), one
//     with a refused byte gets 550; nothing reaches the backend;
//   - the backend gets the absolute backend path (listings: relative to the
//     backend's directory when below it, so that NLST lines carry no root);
//   - a verb whose paths the gateway does not know is refused: relayed as
//     it is, an absolute path in it would name the backend's own tree.
//
// Replies: PWD is the gateway's; MKD's 257 and MLST's fact line are mapped
// back (backendPaths.go); any other backend reply has the root directory in
// its text replaced by the virtual path (hideRoot, in send).
//
// Left as it is: what comes over a data connection. A listing of a path
// outside the session's directory (NLST /out from /in) is sent as the
// backend path, and servers that echo the argument's directory in NLST
// lines then show the root there; LIST and MLSD lines carry names only.
// A name starting with "-" cannot be listed by name (read as options).

// confinement is a session's virtual root; pol nil: not confined.
type confinement struct {
	pol  *vfs.Policy
	cwd  string // the current virtual directory, from vfs.Resolve
	path string // the current command's virtual path(s), for its log line and events
	// rule and allowed are the current command's rule decision (access
	// rules), for its log line and event; rule "" when none was taken.
	rule    string
	allowed bool
}

// confined is a client command as the backend gets it.
type confined struct {
	send    ftp.Command // to the backend
	op      vfs.Op      // what the command does to its paths
	virtual []string    // the virtual paths it names (none: it names no path)
}

// errNotConfinable: a verb that may name a path the gateway cannot map.
var errNotConfinable = errors.New("command not available to a confined user")

// pathFree are the relayed verbs that name no path.
var pathFree = map[string]bool{
	"TYPE": true, "MODE": true, "STRU": true, "ALLO": true, "NOOP": true, "SYST": true,
	"OPTS": true, "HELP": true, "CLNT": true, "LANG": true, "ACCT": true,
}

// onePath are the verbs whose whole argument is one path.
var onePath = map[string]bool{
	"CWD": true, "XCWD": true, "RETR": true, "STOR": true, "APPE": true, "STOU": true,
	"DELE": true, "MKD": true, "XMKD": true, "RMD": true, "XRMD": true,
	"RNFR": true, "RNTO": true, "SIZE": true, "MLST": true,
	"HASH": true, "XCRC": true, "XMD5": true, "XSHA1": true, "XSHA256": true,
}

// siteFree are the SITE subcommands that name no path.
var siteFree = map[string]bool{"HELP": true, "IDLE": true, "UMASK": true}

// confinePath maps cmd, a command of a confined session, to what the
// backend gets. Errors: vfs.ErrEscape, vfs.ErrBadPath, errNotConfinable.
func (s *session) confinePath(cmd ftp.Command) (confined, error) {
	c := confined{send: cmd}
	op, _ := vfs.VerbOp(cmd.Verb)
	c.op = op
	arg := cmd.Arg
	switch v := cmd.Verb; {
	case pathFree[v]:
		return c, nil
	case v == "CDUP" || v == "XCUP":
		c.op = vfs.OpList
		return c, s.mapOne(&c, "CWD", "", "..")
	case onePath[v]:
		if arg == "" && v == "STOU" {
			c.virtual = []string{s.vroot.cwd} // a name the backend picks, in its directory (ours)
			return c, nil
		}
		if arg == "" && v != "CWD" && v != "XCWD" && v != "MLST" {
			return c, nil // a syntax error the backend answers
		}
		return c, s.mapOne(&c, v, "", arg)
	case v == "LIST" || v == "NLST" || v == "MLSD":
		opts, p := splitListArg(arg)
		c.op = vfs.OpList
		return c, s.mapListing(&c, opts, p)
	case v == "STAT":
		if arg == "" {
			return c, nil // the server's status, no path
		}
		// On the control connection, whose replies are rewritten: the
		// backend path (STAT without one would be the server's status).
		opts, p := splitListArg(arg)
		if opts != "" {
			opts += " "
		}
		c.op = vfs.OpList
		return c, s.mapOne(&c, v, opts, p)
	case v == "MDTM" || v == "MFMT" || v == "MFCT" || v == "MFF":
		// MDTM path reads a time; "MDTM 20240101120000 path" (like MFMT
		// and MFCT) sets one on some servers; MFF takes "facts path".
		first, rest, ok := strings.Cut(arg, " ")
		if v == "MDTM" && (!ok || !isTimeVal(first)) {
			return c, s.mapOne(&c, v, "", arg)
		}
		if !ok {
			return c, errNotConfinable
		}
		c.op = vfs.OpWrite
		return c, s.mapOne(&c, v, first+" ", rest)
	case v == "SITE":
		sub, rest, _ := strings.Cut(strings.TrimLeft(arg, " "), " ")
		switch {
		case siteFree[strings.ToUpper(sub)]:
			return c, nil
		case strings.EqualFold(sub, "CHMOD"):
			mode, p, ok := strings.Cut(rest, " ")
			if !ok {
				return c, nil // the backend answers the syntax error
			}
			c.op = vfs.OpWrite
			return c, s.mapOne(&c, v, sub+" "+mode+" ", p)
		}
	}
	return c, errNotConfinable
}

// mapOne resolves p and sends verb prefix+backend path.
func (s *session) mapOne(c *confined, verb, prefix, p string) error {
	v, err := vfs.Resolve(s.vroot.cwd, p)
	if err != nil {
		return err
	}
	c.virtual = append(c.virtual, v)
	c.send = ftp.Command{Verb: verb, Arg: prefix + s.vroot.pol.Root.ToBackend(v)}
	return nil
}

// mapListing resolves a listing's path; the options before it are kept.
// No path: the backend lists its own directory, kept in step with the
// session's. A path below the directory is sent relative to it, so that
// NLST's lines (which echo the argument's directory) carry no root.
func (s *session) mapListing(c *confined, opts, p string) error {
	v, err := vfs.Resolve(s.vroot.cwd, p)
	if err != nil {
		return err
	}
	c.virtual = append(c.virtual, v)
	send := ""
	switch {
	case p == "" || v == s.vroot.cwd:
	case s.vroot.cwd == "/":
		send = v[1:]
	case strings.HasPrefix(v, s.vroot.cwd+"/"):
		send = v[len(s.vroot.cwd)+1:]
	default:
		send = s.vroot.pol.Root.ToBackend(v)
	}
	arg := opts
	if send != "" {
		if arg != "" {
			arg += " "
		}
		arg += send
	}
	c.send = ftp.Command{Verb: c.send.Verb, Arg: arg}
	return nil
}

// splitListArg splits "-la dir" into the options and the path: leading
// words that start with "-" are options (a name starting with "-" cannot
// be listed by name).
func splitListArg(arg string) (opts, p string) {
	rest := arg
	for strings.HasPrefix(rest, "-") {
		word, after, _ := strings.Cut(rest, " ")
		if opts != "" {
			opts += " "
		}
		opts += word
		rest = strings.TrimLeft(after, " ")
	}
	return opts, rest
}

// isTimeVal says whether s is an MDTM/MFMT time: YYYYMMDDHHMMSS[.sss].
func isTimeVal(s string) bool {
	digits, frac, _ := strings.Cut(s, ".")
	return len(digits) == 14 && strings.Trim(digits, "0123456789") == "" && strings.Trim(frac, "0123456789") == ""
}

// errRule: the access rules refused the command; the decision (and the
// rule that made it) is in the command's log line and event.
var errRule = errors.New("refused by the access rules")

// decide records d as the current command's decision, and is errRule when
// it refuses.
func (s *session) decide(d vfs.Decision) error {
	s.vroot.rule, s.vroot.allowed = d.Rule, d.Allowed
	if !d.Allowed {
		return fmt.Errorf("%w: %s", errRule, d.Rule)
	}
	return nil
}

// allowPath asks the path rules about op on the virtual path v and, for a
// name the command creates (an upload's, a rename's target, a new
// directory), the file-name filters.
func (s *session) allowPath(op vfs.Op, v string, creates bool) error {
	if err := s.decide(s.vroot.pol.CheckPath(op, v)); err != nil || !creates {
		return err
	}
	return s.decide(s.vroot.pol.CheckName(op, v))
}

// createsName says whether cmd's path is a name it creates, which the
// file-name filters judge: STOR, APPE, STOU with a name, RNTO, MKD.
func createsName(cmd ftp.Command) bool {
	switch cmd.Verb {
	case "STOR", "APPE", "RNTO", "MKD", "XMKD":
		return true
	case "STOU":
		return cmd.Arg != ""
	}
	return false
}

// dispatchConfined handles a command of a confined, logged-in session.
func (s *session) dispatchConfined(cmd ftp.Command) error {
	switch cmd.Verb {
	case "PWD", "XPWD":
		return s.write(ftp.NewReply(ftp.StatusPathCreated, vfs.Quote257(s.vroot.cwd)+" is the current directory."))
	}
	if cmd.Verb == "SITE" && s.env.cfg.Login.CheckSite(cmd.Arg) != nil {
		return s.handleSITE(cmd) // refused by policy before its path is looked at
	}
	if err := s.decide(s.vroot.pol.CheckCommand(cmd.Verb, cmd.Arg)); err != nil {
		s.log.Warn().Str(fieldCommand, cmd.Verb).Str("rule", s.vroot.rule).Msg("command refused by the access rules")
		if isTransferVerb(cmd.Verb) {
			s.closePending()
		}
		if cmd.Verb == "SITE" {
			return s.reply(ftp.StatusNotImplementedParameter, "SITE command not allowed for your account.")
		}
		return s.reply(ftp.StatusNotImplemented, "Command not allowed for your account.")
	}
	if h, ok := handlers[cmd.Verb]; ok && !isTransferVerb(cmd.Verb) && cmd.Verb != "SITE" && !isHashVerb(cmd.Verb) {
		return h(s, cmd) // the edge's own, and path-free
	}
	c, err := s.confinePath(cmd)
	if err == nil {
		for _, v := range c.virtual {
			if err = s.allowPath(c.op, v, createsName(cmd)); err != nil {
				break
			}
		}
	}
	if err != nil {
		return s.refusePath(cmd, err)
	}
	s.vroot.path = strings.Join(c.virtual, " ")
	if len(c.virtual) > 0 {
		s.log.Debug().Str(fieldCommand, cmd.Verb).Str(fieldPath, s.vroot.path).Str("backend_path", c.send.Arg).Msg("confined path")
	}
	switch cmd.Verb {
	case "CWD", "XCWD", "CDUP", "XCUP":
		return s.changeDir(c)
	case "MKD", "XMKD":
		return s.makeDir(c)
	case "MLST":
		return s.listFacts(c)
	case "SITE":
		return s.handleSITE(c.send)
	}
	if isTransferVerb(cmd.Verb) {
		return s.handleTransfer(c.send)
	}
	if isHashVerb(cmd.Verb) {
		return s.hashCommand(c.send, cmd.Arg)
	}
	return s.relay(c.send)
}

func isTransferVerb(v string) bool {
	switch v {
	case "RETR", "STOR", "STOU", "APPE", "LIST", "NLST", "MLSD":
		return true
	}
	return false
}

// refusePath answers a command confinePath or the rules refused; an escape
// counts as abuse and may ban the address.
func (s *session) refusePath(cmd ftp.Command, err error) error {
	if isTransferVerb(cmd.Verb) {
		s.closePending() // as after a transfer the backend refused
	}
	ev := s.log.Warn().Err(err).Str(fieldCommand, cmd.Verb).Str("cwd", s.vroot.cwd)
	switch {
	case errors.Is(err, errNotConfinable):
		ev.Msg("command refused: not available to a confined user")
		return s.reply(ftp.StatusNotImplemented, "Command not available here.")
	case errors.Is(err, vfs.ErrEscape):
		ev.Msg("path outside the root refused")
		if s.abuse(policy.KindPathEscape) {
			_ = s.reply(ftp.StatusFileUnavailable, "No such file or directory.")
			_ = s.reply(ftp.StatusNotAvailable, "Service not available: your address is banned.")
			return s.errorf("%w", errBanned)
		}
	case errors.Is(err, vfs.ErrBadPath):
		ev.Msg("path refused: bytes not allowed in a path")
	default:
		ev.Msg("path refused by the rules")
		return s.reply(ftp.StatusFileUnavailable, "Permission denied.")
	}
	return s.reply(ftp.StatusFileUnavailable, "No such file or directory.")
}

// isHashVerb: the gateway answers HASH and XSHA256 (hashcmd.go), on the
// confined path.
func isHashVerb(v string) bool { return v == "HASH" || v == "XSHA256" }
