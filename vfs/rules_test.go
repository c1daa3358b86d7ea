package vfs

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// partner is the README's partner example: write-only incoming/, read-only
// outgoing/, nothing deleted, no executables.
func partner(t *testing.T) *Policy {
	t.Helper()
	a := &Access{
		Profiles: map[string]Profile{"partner": {
			Root: "/partners/%s",
			Paths: []PathRule{
				{Path: "/", Allow: []string{"list"}},
				{Path: "/**", Deny: []string{"delete"}},
				{Path: "/incoming/**", Allow: []string{"list", "write", "mkdir"}, Deny: []string{"read", "rename"}},
				{Path: "/outgoing/**", Allow: []string{"list", "read"}},
			},
			DenyNames: []string{"*.exe", "*.bat"},
			MaxUpload: "100MiB",
			Commands:  []string{"RETR", "STOR", "LIST", "NLST", "MLSD", "SIZE", "MKD", "SITE"},
			Site:      []string{"chmod"},
			Limits:    Limits{MaxSessions: 2, Bandwidth: "1MiB/s", Networks: []string{"192.0.2.0/24", "2001:db8::1"}, Listeners: []string{"partners"}},
		}},
		Default: "partner",
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := a.For("acme", nil)
	if err != nil || p == nil {
		t.Fatalf("For: %v %v", p, err)
	}
	return p
}

func TestCheckPath(t *testing.T) {
	p := partner(t)
	const k = "access.profiles.partner"
	cases := []struct {
		op      Op
		path    string
		allowed bool
		rule    string
	}{
		{OpList, "/", true, k + ".paths[0]"},
		{OpWrite, "/", false, k + " (no rule allows write)"},
		{OpWrite, "/x", false, k + " (no rule allows write)"},
		{OpDelete, "/incoming/x", false, k + ".paths[1]"},
		{OpDelete, "/", false, k + ".paths[1]"},
		{OpWrite, "/incoming/x.csv", true, k + ".paths[2]"},
		{OpWrite, "/incoming", true, k + ".paths[2]"},
		{OpMkdir, "/incoming/2026/11", true, k + ".paths[2]"},
		{OpRead, "/incoming/x.csv", false, k + ".paths[2]"},
		{OpRename, "/incoming/x.csv", false, k + ".paths[2]"},
		{OpList, "/incoming/sub", true, k + ".paths[2]"},
		{OpRead, "/outgoing/report.csv", true, k + ".paths[3]"},
		{OpWrite, "/outgoing/report.csv", false, k + " (no rule allows write)"},
		// An allow grants only the case as written; a deny holds in any case.
		{OpWrite, "/INCOMING/x", false, k + " (no rule allows write)"},
		{OpRead, "/INCOMING/x", false, k + ".paths[2]"},
		// Not canonical: resolved first.
		{OpWrite, "/outgoing/../incoming/x", true, k + ".paths[2]"},
		{OpWrite, "/../x", false, k + " (path not allowed)"},
		{OpList | OpRead, "/outgoing/a", true, k + ".paths[3]"},
		{OpList | OpWrite, "/outgoing/a", false, k + " (no rule allows write)"},
		{0, "/", false, k + " (no operation)"},
	}
	for _, c := range cases {
		d := p.CheckPath(c.op, c.path)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("CheckPath(%s, %q) = %+v, want %v %q", c.op, c.path, d, c.allowed, c.rule)
		}
	}
	var none *Policy
	if d := none.CheckPath(OpDelete, "/x"); !d.Allowed {
		t.Error("nil policy refused")
	}
	open, _ := (&Access{Profiles: map[string]Profile{"o": {Root: "/srv"}}, Default: "o"}).For("u", nil)
	if d := open.CheckPath(OpDelete, "/x"); !d.Allowed {
		t.Error("a profile without path rules refused")
	}
}

func TestCheckName(t *testing.T) {
	p := partner(t)
	csv, _ := (&Access{Profiles: map[string]Profile{"c": {AllowNames: []string{"*.csv", "*.txt"}, DenyNames: []string{"secret*"}}}, Default: "c"}).For("u", nil)
	const k = "access.profiles."
	cases := []struct {
		p       *Policy
		op      Op
		path    string
		allowed bool
		rule    string
	}{
		{p, OpWrite, "/incoming/x.csv", true, k + "partner.deny_names (none matches)"},
		{p, OpWrite, "/incoming/x.exe", false, k + "partner.deny_names[0]"},
		{p, OpWrite, "/incoming/X.EXE", false, k + "partner.deny_names[0]"},
		{p, OpWrite, "/incoming/x.exe.", false, k + "partner.deny_names[0]"},
		{p, OpWrite, "/incoming/x.exe . .", false, k + "partner.deny_names[0]"},
		{p, OpWrite, "/incoming/x.exe::$DATA", false, k + "partner.deny_names[0]"},
		{p, OpRename, "/incoming/run.bat", false, k + "partner.deny_names[1]"},
		{p, OpMkdir, "/incoming/d.bat", false, k + "partner.deny_names[1]"},
		{p, OpRead, "/outgoing/tool.exe", true, k + "partner (names not filtered for read)"}, // reads are not filtered
		{csv, OpWrite, "/a/data.CSV", true, k + "c.allow_names[0]"},
		{csv, OpWrite, "/a/notes.txt", true, k + "c.allow_names[1]"},
		{csv, OpWrite, "/a/x.exe", false, k + "c.allow_names (none matches)"},
		{csv, OpWrite, "/a/x.exe:y.csv", false, k + "c.allow_names (none matches)"},
		{csv, OpWrite, "/a/:y.csv", false, k + "c.allow_names (none matches)"},
		{csv, OpWrite, "/a/secret.csv", false, k + "c.deny_names[0]"},
		{csv, OpRename, "/a/dir", false, k + "c.allow_names (none matches)"},
		{csv, OpMkdir, "/a/dir", true, k + "c.deny_names (none matches)"}, // allow_names: files only
		{csv, OpWrite, "/", true, k + "c (no name)"},
	}
	for _, c := range cases {
		d := c.p.CheckName(c.op, c.path)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("CheckName(%s, %q) = %+v, want %v %q", c.op, c.path, d, c.allowed, c.rule)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	p := partner(t)
	const k = "access.profiles.partner"
	cases := []struct {
		verb, arg string
		allowed   bool
		rule      string
	}{
		{"RETR", "x", true, k + ".commands"},
		{"retr", "x", true, k + ".commands"},
		{"DELE", "x", false, k + ".commands"},
		{"RNFR", "x", false, k + ".commands"},
		{"MKD", "d", true, k + ".commands"},
		{"XMKD", "d", true, k + ".commands"},
		{"XRMD", "d", false, k + ".commands"},
		{"SITE", "CHMOD 644 x", true, k + ".site"},
		{"SITE", "chmod 644 x", true, k + ".site"},
		{"SITE", "EXEC rm", false, k + ".site"},
		{"SITE", "", false, k + ".site"},
		{"STAT", "", true, k + " (session command)"},
		{"STAT", "/etc", false, k + ".commands"},
		{"CWD", "x", true, k + " (session command)"},
		{"XCWD", "x", true, k + " (session command)"},
		{"ABOR", "", true, k + " (session command)"},
		{"REST", "100", true, k + " (session command)"},
	}
	for _, c := range cases {
		d := p.CheckCommand(c.verb, c.arg)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("CheckCommand(%q, %q) = %+v, want %v %q", c.verb, c.arg, d, c.allowed, c.rule)
		}
	}
	for _, v := range SessionVerbs {
		if !p.CheckCommand(v, "").Allowed {
			t.Errorf("session verb %s refused", v)
		}
	}
	open, _ := (&Access{Profiles: map[string]Profile{"o": {}}, Default: "o"}).For("u", nil)
	if d := open.CheckCommand("DELE", "x"); !d.Allowed {
		t.Errorf("no command rules: %+v", d)
	}
}

func TestCheckSourceAndLimits(t *testing.T) {
	p := partner(t)
	if p.MaxUpload != 100<<20 || p.MaxSessions != 2 || p.Bandwidth != 1<<20 {
		t.Errorf("limits %d %d %d", p.MaxUpload, p.MaxSessions, p.Bandwidth)
	}
	const k = "access.profiles.partner.limits"
	cases := []struct {
		addr, listener string
		allowed        bool
		rule           string
	}{
		{"192.0.2.7", "partners", true, k},
		{"::ffff:192.0.2.7", "partners", true, k},
		{"2001:db8::1", "partners", true, k},
		{"2001:db8::2", "partners", false, k + ".networks"},
		{"198.51.100.1", "partners", false, k + ".networks"},
		{"192.0.2.7", "public", false, k + ".listeners"},
	}
	for _, c := range cases {
		d := p.CheckSource(netip.MustParseAddr(c.addr), c.listener)
		if d.Allowed != c.allowed || d.Rule != c.rule {
			t.Errorf("CheckSource(%s, %s) = %+v, want %v %q", c.addr, c.listener, d, c.allowed, c.rule)
		}
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"", 0, false}, {"0", 0, false}, {"1024", 1024, false}, {" 7 ", 7, false},
		{"100MiB", 100 << 20, false}, {"100 MiB", 100 << 20, false}, {"100mib", 100 << 20, false},
		{"1K", 1024, false}, {"2G", 2 << 30, false}, {"1T", 1 << 40, false}, {"5B", 5, false},
		{"1KB", 1000, false}, {"3GB", 3e9, false}, {"8TiB", 8 << 40, false},
		{"-1", 0, true}, {"-5MiB", 0, true}, {"1.5GiB", 0, true}, {"MiB", 0, true}, {"10 bits", 0, true},
		{"9223372036854775807", 1<<63 - 1, false}, {"9223372036854775808", 0, true}, {"8388608TiB", 0, true},
		{"1e6", 0, true}, {"0x10", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, bad %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestProfileNames(t *testing.T) {
	for name, ok := range map[string]bool{"partner": true, "Partner-2_b": true, "": false, "a.b": false, "a b": false, "a[0]": false} {
		err := (&Access{Profiles: map[string]Profile{name: {}}}).Validate()
		if (err == nil) != ok {
			t.Errorf("profile name %q: %v", name, err)
		}
	}
}

func TestValidateRules(t *testing.T) {
	a := &Access{Profiles: map[string]Profile{"p": {
		Paths: []PathRule{
			{Path: "incoming/**", Allow: []string{"write"}},
			{Path: "/a", Allow: []string{"upload"}},
			{Path: "/b", Deny: []string{"fly"}},
			{Path: "/c", Allow: []string{"read"}, Deny: []string{"read"}},
			{Path: "/d"},
		},
		DenyNames:  []string{"a/b"},
		AllowNames: []string{""},
		MaxUpload:  "-1",
		Commands:   []string{"RETR", "FROB"},
		Site:       []string{"CHMOD", "A B"},
		Limits:     Limits{MaxSessions: -1, Bandwidth: "fast", Networks: []string{"10.0.0.0/33", "::ffff:0:0/80"}, Listeners: []string{" "}},
	}}}
	var keys []string
	for _, e := range confkey.List(a.Validate()) {
		keys = append(keys, e.Key)
	}
	want := []string{
		"profiles.p.paths[0].path", "profiles.p.paths[1].allow", "profiles.p.paths[2].deny", "profiles.p.paths[3]", "profiles.p.paths[4]",
		"profiles.p.deny_names[0]", "profiles.p.allow_names[0]", "profiles.p.commands[1]", "profiles.p.site[1]", "profiles.p.site",
		"profiles.p.max_upload", "profiles.p.limits.max_sessions", "profiles.p.limits.bandwidth",
		"profiles.p.limits.networks[0]", "profiles.p.limits.networks[1]", "profiles.p.limits.listeners[0]",
	}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(keys, " "), strings.Join(want, " "))
	}
	if _, err := a.For("u", nil); err != nil {
		t.Errorf("no profile applies, yet: %v", err)
	}
	a.Default = "p"
	if _, err := a.For("u", nil); err == nil {
		t.Error("For compiled a broken profile")
	}
}

// FuzzDecisions: no client path, name or command makes a check panic, a
// deny of the partner profile holds in any case, and a refused path is
// never allowed.
func FuzzDecisions(f *testing.F) {
	for _, s := range []string{"/incoming/x.exe", "/INCOMING/X.EXE::$DATA", "/../x", "/a\\b", "/outgoing/r.csv", ""} {
		f.Add(s, "STOR", "CHMOD 644 x")
	}
	a := &Access{Profiles: map[string]Profile{"p": {
		Paths: []PathRule{
			{Path: "/secret/**", Deny: []string{"read", "write", "list"}},
			{Path: "/**", Allow: []string{"list", "read", "write"}},
		},
		DenyNames: []string{"*.exe"}, AllowNames: []string{"*.csv", "*.exe"},
		Commands: []string{"RETR", "SITE"}, Site: []string{"CHMOD"},
	}}, Default: "p"}
	p, err := a.For("u", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, arg, verb, siteArg string) {
		p.CheckCommand(verb, siteArg)
		for _, op := range []Op{OpList, OpRead, OpWrite, OpDelete, OpRename, OpMkdir} {
			d := p.CheckPath(op, arg)
			v, err := Resolve("/", arg)
			if err != nil && d.Allowed {
				t.Fatalf("%s on refused path %q allowed", op, arg)
			}
			if err == nil && d.Allowed && len(v) >= len("/secret") && strings.EqualFold(v[:len("/secret")], "/secret") &&
				(len(v) == len("/secret") || v[len("/secret")] == '/') {
				t.Fatalf("%s on %q allowed under the denied /secret", op, v)
			}
			n := p.CheckName(op, arg)
			if err == nil && n.Allowed && op == OpWrite {
				for _, f := range nameForms(v[strings.LastIndex(v, "/")+1:]) {
					if strings.HasSuffix(strings.ToLower(f), ".exe") {
						t.Fatalf("name %q allowed", v)
					}
				}
			}
		}
	})
}

// FuzzParseSize: never a panic, never a negative size, and a plain number
// reads back as itself.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"100MiB", "1 GB", "-1", "9223372036854775807", "8388607TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		if m, err := ParseSize(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("%d reads back as %d, %v", n, m, err)
		}
	})
}
