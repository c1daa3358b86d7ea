package interop

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// curlKind is curl: explicit (--ssl-reqd) or implicit (ftps://), EPSV (its
// default) or PASV (--disable-epsv), active with -P (EPRT, or PORT with
// --disable-eprt); TLS 1.2 with --tls-max 1.2, 1.3 with --tlsv1.3. One
// transfer per invocation; the other commands go as -Q quote commands.
// curl does no MLSD and no REST+STOR (it resumes an upload with SIZE and
// APPE).
type curlKind struct{}

func (curlKind) Name() string { return "curl" }

func (curlKind) Unsupported(cellMode) string { return "" }

func (curlKind) client(c *cell) curlClient {
	cl := curlClient{Addr: c.addr(), TLS: c.mode.Front, User: c.srv.User.Name, Password: c.srv.User.Password,
		PASV: c.mode.Data == dataPASV}
	switch c.mode.Data {
	case dataPORT:
		cl.Extra = append(cl.Extra, "-P", "127.0.0.1", "--disable-eprt")
	case dataEPRT:
		cl.Extra = append(cl.Extra, "-P", "127.0.0.1")
	}
	if c.mode.TLS == "1.2" {
		cl.Extra = append(cl.Extra, "--tlsv1.2", "--tls-max", "1.2")
	} else {
		cl.Extra = append(cl.Extra, "--tlsv1.3")
	}
	return cl
}

// ftpPath escapes a slash-separated path for an ftp:// URL.
func ftpPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

func (k curlKind) Run(ctx context.Context, c *cell, ops opSet) {
	cl := k.client(c)
	// After the first failed run the rest are skipped: the first failure is
	// the diagnosis, and a hanging mode costs one timeout, not one per step.
	failed := false
	run := func(what string, args ...string) (curlRun, bool) {
		if failed {
			return curlRun{}, false
		}
		r := runCurl(ctx, c.t, append(cl.args(), append([]string{"--max-time", "90"}, args...)...))
		c.logf("%s", r.String())
		if r.Err != nil {
			c.errorf("curl %s: %v: %s", what, r.Err, lastLines(r.Output, 2))
			failed = true
			return r, false
		}
		k.checkMode(c, what, r)
		return r, true
	}
	u := func(name string) string { return cl.url(ftpPath(c.Dir + "/" + name)) }
	local := func(name string) string { return c.Local + "/" + name }

	if ops == opsBig {
		if _, ok := run("upload big.bin", "-T", c.fx.Big, u("big.bin")); ok {
			c.expectServerFile("big.bin", c.fx.Big)
		}
		if _, ok := run("download big.bin", "-o", local("big.bin"), u("big.bin")); ok {
			c.expectLocalFile("big.bin", c.fx.Big)
		}
		return
	}

	// basic: STOR; SIZE + RETR; NLST with MKD/CWD/CDUP/RMD quoted; LIST.
	if _, ok := run("upload up.bin", "-T", c.fx.Src, u("up.bin")); ok {
		c.expectServerFile("up.bin", c.fx.Src)
	}
	if _, ok := run("download seed.bin", "-o", local("seed.bin"), u("seed.bin")); ok {
		c.expectLocalFile("seed.bin", c.fx.Seed)
	}
	sub := c.Dir + "/sub"
	if r, ok := run("NLST", "--list-only", "-Q", "MKD "+sub, "-Q", "CWD "+sub, "-Q", "CDUP", "-Q", "RMD sub", "-Q", "CDUP", u("")); ok {
		if !strings.Contains(r.Output, "seed.bin") || !strings.Contains(r.Output, "up.bin") {
			c.errorf("NLST lacks seed.bin or up.bin")
		}
		c.expectServerAbsent("sub")
	}
	if r, ok := run("LIST", u("")); ok && !strings.Contains(r.Output, "seed.bin") {
		c.errorf("LIST lacks seed.bin")
	}
	if ops != opsFull {
		return
	}

	// full
	const d, f = "dir ü space", "file ü space.bin"
	if _, ok := run("upload UTF-8 name", "--ftp-create-dirs", "-T", c.fx.Src, u(d+"/"+f)); ok {
		c.expectServerFile(d+"/"+f, c.fx.Src)
		if _, ok := run("download UTF-8 name", "-o", local("utf8.bin"), u(d+"/"+f)); ok {
			c.expectLocalFile("utf8.bin", c.fx.Src)
		}
	}
	if _, ok := run("upload zero.bin", "-T", c.fx.Zero, u("zero.bin")); ok {
		c.expectServerFile("zero.bin", c.fx.Zero)
		if _, ok := run("download zero.bin", "-o", local("zero.bin"), u("zero.bin")); ok {
			c.expectLocalFile("zero.bin", c.fx.Zero)
		}
	}
	if r, ok := run("MDTM (--head)", "-I", u("seed.bin")); ok && !strings.Contains(r.Output, "Last-Modified:") {
		c.errorf("curl -I: no Last-Modified (MDTM) in the output")
	}
	if _, ok := run("upload app.bin", "-T", c.fx.Part1, u("app.bin")); ok {
		if _, ok := run("APPE app.bin", "--append", "-T", c.fx.Part2, u("app.bin")); ok {
			c.expectServerFile("app.bin", c.fx.App)
		}
	}
	// Upload resume: the backend holds the first half; curl asks SIZE and
	// sends the rest with APPE.
	src, _ := os.ReadFile(c.fx.Src)
	c.srv.putFile(c.t, c.Dir+"/rs.bin", src[:len(src)/2])
	if _, ok := run("resume upload rs.bin (-C -)", "-C", "-", "-T", c.fx.Src, u("rs.bin")); ok {
		c.expectServerFile("rs.bin", c.fx.Src)
	}
	if _, ok := run("REST+RETR", "-C", strconv.FormatInt(c.fx.Rest, 10), "-o", local("seed-tail.bin"), u("seed.bin")); ok {
		seed, _ := os.ReadFile(c.fx.Seed)
		c.expectLocalSum("seed-tail.bin", sumBytes(seed[c.fx.Rest:]), int64(len(seed))-c.fx.Rest)
	}
	c.srv.putFile(c.t, c.Dir+"/gone.bin", []byte("gone"))
	if _, ok := run("RNFR/RNTO, DELE", "--list-only",
		"-Q", "RNFR "+c.Dir+"/up.bin", "-Q", "RNTO "+c.Dir+"/renamed.bin", "-Q", "DELE "+c.Dir+"/gone.bin", u("")); ok {
		c.expectServerAbsent("up.bin")
		c.expectServerFile("renamed.bin", c.fx.Src)
		c.expectServerAbsent("gone.bin")
	}
	// A range download stops reading after 256 KiB; curl then aborts the
	// transfer (ABOR) and must still see a clean end of the session.
	if r, ok := run("ranged download (ABOR)", "-r", "0-262143", "-o", local("abort-head.bin"), u("abort.bin")); ok {
		ab, _ := os.ReadFile(c.fx.Abort)
		c.expectLocalSum("abort-head.bin", sumBytes(ab[:262144]), 262144)
		if !strings.Contains(r.Output, "> ABOR") {
			c.logf("note: curl sent no ABOR for the ranged download")
		}
	}
	if _, ok := run("download after ABOR", "-o", local("seed-after-abor.bin"), u("seed.bin")); ok {
		c.expectLocalFile("seed-after-abor.bin", c.fx.Seed)
	}
}

// checkMode asserts that curl used the cell's data mode (the reply or the
// command in its -v output) and TLS version; passive ports must lie in the
// gateway's range.
func (curlKind) checkMode(c *cell, what string, r curlRun) {
	out := r.Output
	dataConn := strings.Contains(out, "> RETR") || strings.Contains(out, "> STOR") ||
		strings.Contains(out, "> APPE") || strings.Contains(out, "> LIST") || strings.Contains(out, "> NLST")
	if !dataConn {
		return
	}
	switch c.mode.Data {
	case dataPASV, dataEPSV:
		replies, err := passiveReplies(out)
		if err != nil {
			c.errorf("%s: %v", what, err)
		}
		want := 229
		if c.mode.Data == dataPASV {
			want = 227
		}
		seen := false
		for _, p := range replies {
			seen = seen || p.Code == want
			if p.Port < c.gw.Config.PassiveLo || p.Port > c.gw.Config.PassiveHi {
				c.errorf("%s: passive port %d outside %d-%d: %q", what, p.Port, c.gw.Config.PassiveLo, c.gw.Config.PassiveHi, p.Line)
			}
			if p.Code == 227 && p.Host != c.gw.Config.PublicHost {
				c.errorf("%s: 227 advertises %s, want %s", what, p.Host, c.gw.Config.PublicHost)
			}
		}
		if !seen {
			c.errorf("%s: no %d reply in curl's output", what, want)
		}
	case dataPORT:
		if !strings.Contains(out, "> PORT ") {
			c.errorf("%s: curl sent no PORT", what)
		}
	case dataEPRT:
		if !strings.Contains(out, "> EPRT ") {
			c.errorf("%s: curl sent no EPRT", what)
		}
	}
	if want := "TLSv" + c.mode.TLS; !strings.Contains(out, "SSL connection using "+want) {
		c.errorf("%s: curl did not report %s for the control connection", what, want)
	}
}
