package vfs

import "strings"

// SessionVerbs are the commands a profile's commands list never refuses:
// without them a session cannot log in, set up TLS and data connections,
// move around or end. None of them reads, writes or changes a file;
// navigation (CWD, CDUP, PWD) stays subject to the path rules (list), and
// the data connection set-up (PORT, EPRT) to the global policy (active
// mode is off by default). REST is here because it only sets the offset of
// the transfer that follows, which the commands list and the path rules
// decide; ABOR because a transfer must always be stoppable. STAT without an
// argument (the session's status) passes too; STAT with a path is a
// listing and needs STAT in the list.
var SessionVerbs = []string{
	"USER", "PASS", "ACCT", "QUIT", "NOOP", "FEAT", "OPTS", "SYST", "HELP", "HOST",
	"AUTH", "PBSZ", "PROT",
	"PWD", "CWD", "CDUP",
	"TYPE", "MODE", "STRU",
	"PASV", "EPSV", "PORT", "EPRT",
	"REST", "ABOR",
}

// ruleVerbs are the other commands a commands list may name.
var ruleVerbs = []string{
	"RETR", "STOR", "STOU", "APPE", "ALLO",
	"LIST", "NLST", "MLSD", "MLST", "STAT", "SIZE", "MDTM",
	"DELE", "RMD", "MKD", "RNFR", "RNTO",
	"SITE", "MFMT", "MFCT", "MFF", "HASH", "XCRC", "XMD5", "XSHA1", "XSHA256", "AVBL", "CLNT", "LANG",
	"CCC",
}

var (
	sessionVerbSet = set(SessionVerbs)
	knownVerbs     = set(append(append([]string(nil), SessionVerbs...), ruleVerbs...))
)

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// canonVerb maps the RFC 775 X-forms to their RFC 959 verbs: a rule naming
// MKD also decides XMKD.
func canonVerb(v string) string {
	switch v {
	case "XMKD":
		return "MKD"
	case "XRMD":
		return "RMD"
	case "XCWD":
		return "CWD"
	case "XCUP":
		return "CDUP"
	case "XPWD":
		return "PWD"
	}
	return v
}

// CheckCommand decides a command (verb, and its argument for SITE and
// STAT) by the profile's commands and site lists. A nil policy, or a
// profile without the lists, allows every command. SessionVerbs always
// pass. A SITE subcommand must also be in policy.allowed_site_commands:
// that global check stays with the session (policy.LoginPolicy.CheckSite),
// and the site list can only narrow it.
func (p *Policy) CheckCommand(verb, arg string) Decision {
	if p == nil || p.rules == nil {
		return allowAll
	}
	r := p.rules
	v := canonVerb(strings.ToUpper(verb))
	if sessionVerbSet[v] || (v == "STAT" && strings.TrimSpace(arg) == "") {
		return Decision{Allowed: true, Rule: r.key + " (session command)"}
	}
	if r.commands != nil && !r.commands[v] {
		return Decision{Rule: r.key + ".commands"}
	}
	if v == "SITE" && r.site != nil {
		sub, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
		if !r.site[strings.ToUpper(sub)] {
			return Decision{Rule: r.key + ".site"}
		}
		return Decision{Allowed: true, Rule: r.key + ".site"}
	}
	if r.commands == nil {
		return Decision{Allowed: true, Rule: r.key + " (no command rules)"}
	}
	return Decision{Allowed: true, Rule: r.key + ".commands"}
}
