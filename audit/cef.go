package audit

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// CEF returns r as an ArcSight Common Event Format line:
//
//	CEF:0|ftpsgate|ftpsgate|VERSION|SIGNATURE|NAME|SEVERITY|EXTENSION
//
// SIGNATURE is the kind with its outcome (login:failed, transfer:upload),
// SEVERITY 0..10 (7 for a failure, 4 for a notice, 3 for the rest).
// EXTENSION uses the standard keys rt (ms since the epoch), src, spt,
// suser, act, fname, fsize, fileHash, outcome, msg, and cs1..cs6 with
// their labels: cs1 session, cs2 record id, cs3 listener, cs4 backend
// path, cs5 balancer, cs6 rule. Header fields escape \ and |; extension
// values escape \, = and line ends (\n, \r); nothing else is changed.
func CEF(r *Record, version string) string {
	sig, name, act, outcome, msg := cefEvent(r)
	sev := 3
	switch SyslogSeverity(r) {
	case sevWarning:
		sev = 7
	case sevNotice:
		sev = 4
	}
	if version == "" {
		version = "0"
	}
	var b strings.Builder
	b.WriteString("CEF:0|ftpsgate|ftpsgate|")
	for _, f := range []string{version, sig, name, strconv.Itoa(sev)} {
		b.WriteString(CEFHeaderEscape(f))
		b.WriteByte('|')
	}
	var ext []string
	add := func(k, v string) {
		if v != "" {
			ext = append(ext, k+"="+CEFValueEscape(v))
		}
	}
	if !r.Time.IsZero() {
		add("rt", strconv.FormatInt(r.Time.UnixMilli(), 10))
	}
	if host, port, err := net.SplitHostPort(r.Client); err == nil {
		add("src", host)
		add("spt", port)
	} else {
		add("src", r.Client)
	}
	add("suser", r.User)
	add("act", act)
	if t := r.Transfer; t != nil {
		add("fname", t.Path)
		add("fsize", strconv.FormatInt(t.Bytes, 10))
		add("fileHash", t.SHA256)
		add("cs4", t.BackendPath)
		if t.BackendPath != "" {
			add("cs4Label", "backendPath")
		}
	}
	add("outcome", outcome)
	add("msg", msg)
	add("cs1", r.Session)
	if r.Session != "" {
		add("cs1Label", "session")
	}
	add("cs2", r.ID)
	add("cs2Label", "recordId")
	add("cs3", r.Listener)
	if r.Listener != "" {
		add("cs3Label", "listener")
	}
	add("cs5", r.Balancer)
	if r.Balancer != "" {
		add("cs5Label", "balancer")
	}
	if r.Command != nil && r.Command.Rule != "" {
		add("cs6", r.Command.Rule)
		add("cs6Label", "rule")
	}
	b.WriteString(strings.Join(ext, " "))
	return b.String()
}

// cefEvent returns the signature, name, act, outcome and msg of r.
func cefEvent(r *Record) (sig, name, act, outcome, msg string) {
	outcome = "success"
	if RecordFailed(r) {
		outcome = "failure"
	}
	sig, name = r.Kind, r.Kind
	switch {
	case r.Login != nil:
		sig, name, act, msg = "login:"+r.Login.Result, "Login "+r.Login.Result, "login", r.Login.Reason
	case r.Transfer != nil:
		t := r.Transfer
		sig, name, act, msg = "transfer:"+t.Direction, "Transfer "+t.Direction, t.Verb, t.Error
		if !t.Complete {
			name += " incomplete"
		}
	case r.Command != nil:
		sig, name, act, msg = "command:"+r.Command.Verb, "Command "+r.Command.Verb, r.Command.Verb, r.Command.Text
	case r.SessionStart != nil:
		name = "Session start"
	case r.SessionEnd != nil:
		name, msg = "Session end", r.SessionEnd.Reason
	case r.DataRefused != nil:
		name, msg = "Data connection refused", r.DataRefused.Reason
	case r.Ban != nil:
		name, msg = "Address "+r.Kind, r.Ban.Address+" "+r.Ban.Reason
		msg = strings.TrimSpace(msg)
	case r.Reload != nil:
		name, msg = "Configuration reload", r.Reload.Error
	case r.Certificate != nil:
		sig, name, msg = "certificate:"+r.Certificate.Event, "Certificate "+r.Certificate.Event, r.Certificate.Error
	case r.Inspection != nil:
		x := r.Inspection
		sig, name, act = "inspection:"+x.Action, "Content inspection "+x.Action, x.Action
		msg = strings.TrimSpace(fmt.Sprintf("%s %s=%d %s", x.Direction, x.Detector, x.Count, x.Ref))
	case r.Audit != nil:
		sig, name, msg = "audit:"+r.Audit.Event, "Audit "+r.Audit.Event, r.Audit.Error
	}
	return sig, name, act, outcome, msg
}

// CEFHeaderEscape escapes a CEF header field: \ and | get a backslash;
// a line end (which the format does not allow there) and any other
// control character become a space.
func CEFHeaderEscape(s string) string {
	if !strings.ContainsFunc(s, cefSpecial("\\|")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '|':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r', '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(cefControl(c))
		}
	}
	return b.String()
}

// CEFValueEscape escapes a CEF extension value: \ and = get a backslash,
// a newline becomes \n and a carriage return \r; any other control
// character (tab included) becomes a space: CEF has no escape for them,
// and syslog receivers rewrite them (rsyslog writes a tab as #011).
func CEFValueEscape(s string) string {
	if !strings.ContainsFunc(s, cefSpecial("\\=")) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '=':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(cefControl(c))
		}
	}
	return b.String()
}

// cefSpecial matches the characters escape (the given ones) and the
// control characters.
func cefSpecial(escaped string) func(rune) bool {
	return func(r rune) bool { return r < 0x20 || r == 0x7f || strings.ContainsRune(escaped, r) }
}

// cefControl turns a control character into a space.
func cefControl(c byte) byte {
	if c < 0x20 || c == 0x7f {
		return ' '
	}
	return c
}
