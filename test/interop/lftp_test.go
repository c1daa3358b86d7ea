package interop

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// lftpKind is lftp (Debian's, GnuTLS): explicit with ftp:ssl-force and
// ftp:ssl-protect-data, implicit as ftps://; PASV, EPSV (ftp:prefer-epsv)
// or PORT (ftp:passive-mode off); the TLS version through ssl:priority. One
// script per cell, run with -d (the debug log is the control exchange, the
// password masked by lftp).
type lftpKind struct{}

func (lftpKind) Name() string { return "lftp" }

func (lftpKind) Unsupported(m cellMode) string {
	if m.Data == dataEPRT {
		return "lftp sends EPRT only on IPv6 control connections (PORT on IPv4)"
	}
	return ""
}

// lftpQuote quotes s for an lftp script.
func lftpQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (lftpKind) Run(ctx context.Context, c *cell, ops opSet) {
	bin := requireProgram(c.t, "lftp", "/usr/bin")
	prio := "NORMAL:-VERS-ALL:+VERS-TLS1.3"
	if c.mode.TLS == "1.2" {
		prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
	}
	scheme := "ftp"
	if c.mode.Front == tlsImplicit {
		scheme = "ftps"
	}
	q := lftpQuote
	var s strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	w("set cmd:fail-exit yes")
	w("set net:max-retries 1")
	w("set net:timeout 30")
	w("set net:reconnect-interval-base 1")
	w("set xfer:clobber on")
	w("set ftp:ssl-force true")
	w("set ftp:ssl-protect-data true")
	w("set ftp:ssl-allow yes")
	w("set ssl:verify-certificate no")
	w("set ssl:check-hostname no")
	w("set ssl:priority %s", q(prio))
	w("set ftp:passive-mode %s", map[bool]string{true: "off", false: "on"}[c.mode.Data.active()])
	w("set ftp:prefer-epsv %s", map[bool]string{true: "yes", false: "no"}[c.mode.Data == dataEPSV])
	w("set mirror:parallel-transfer-count 1")
	w("open -u %s,%s %s://%s", q(c.srv.User.Name), q(c.srv.User.Password), scheme, c.addr())
	w("cd %s", q(c.Dir))
	local := func(name string) string { return q(filepath.Join(c.Local, name)) }
	switch ops {
	case opsBig:
		w("put %s -o big.bin", q(c.fx.Big))
		w("get big.bin -o %s", local("big.bin"))
	default:
		w("quote PWD")
		w("mkdir sub")
		w("cd sub")
		w("cd ..")
		w("rmdir sub")
		w("put %s -o up.bin", q(c.fx.Src))
		w("quote SIZE up.bin")
		w("get seed.bin -o %s", local("seed.bin"))
		w("nlist > %s", local("nlist.txt"))
		w("ls > %s", local("list.txt"))
	}
	var src []byte
	if ops == opsFull {
		src, _ = os.ReadFile(c.fx.Src)
		const d, f = "dir ü space", "file ü space.bin"
		w("mkdir %s", q(d))
		w("put %s -o %s", q(c.fx.Src), q(d+"/"+f))
		w("get %s -o %s", q(d+"/"+f), local("utf8.bin"))
		w("put %s -o zero.bin", q(c.fx.Zero))
		w("get zero.bin -o %s", local("zero.bin"))
		w("quote MDTM seed.bin")
		w("cls -l > %s", local("cls.txt"))
		// put -c: the backend holds the first half (REST+STOR);
		// get -c: the local file holds the first part (REST+RETR).
		c.srv.putFile(c.t, c.Dir+"/rs.bin", src[:len(src)/2])
		seed, _ := os.ReadFile(c.fx.Seed)
		if err := os.WriteFile(filepath.Join(c.Local, "seed-resumed.bin"), seed[:c.fx.Rest], 0o644); err != nil {
			c.errorf("%v", err)
		}
		w("put -c %s -o rs.bin", q(c.fx.Src))
		w("get -c seed.bin -o %s", local("seed-resumed.bin"))
		w("mv up.bin renamed.bin")
		w("put %s -o gone.bin", q(c.fx.Part1))
		w("rm gone.bin")
		// mirror -R a tree of 200 files up, then mirror it back down.
		w("mirror -R --no-perms %s tree", q(c.fx.Tree))
		w("mirror --no-perms tree %s", local("tree"))
	}
	w("quit")
	script := filepath.Join(c.t.TempDir(), "script.lftp")
	if err := os.WriteFile(script, []byte(s.String()), 0o600); err != nil {
		c.errorf("%v", err)
		return
	}
	cmd := exec.CommandContext(ctx, bin, "-d", "-f", script)
	cmd.Env = append(os.Environ(), "HOME="+c.t.TempDir()) // no ~/.lftprc, no bookmarks
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	transcript := strings.ReplaceAll(out.String(), c.srv.User.Password, "***")
	c.logf("$ lftp -d -f script (%s)\n%s", ops, transcript)
	if err != nil {
		c.errorf("lftp: %v: %s", err, lastLines(transcript, 3))
	}
	k := lftpKind{}
	k.checkMode(c, transcript)
	if ops == opsBig {
		c.expectServerFile("big.bin", c.fx.Big)
		c.expectLocalFile("big.bin", c.fx.Big)
		return
	}
	c.expectServerAbsent("sub")
	c.expectLocalFile("seed.bin", c.fx.Seed)
	for _, l := range []string{"nlist.txt", "list.txt"} {
		if b, err := os.ReadFile(filepath.Join(c.Local, l)); err != nil || !bytes.Contains(b, []byte("seed.bin")) {
			c.errorf("%s lacks seed.bin (%v)", l, err)
		}
	}
	if ops != opsFull {
		c.expectServerFile("up.bin", c.fx.Src)
		return
	}
	c.expectServerFile("dir ü space/file ü space.bin", c.fx.Src)
	c.expectLocalFile("utf8.bin", c.fx.Src)
	c.expectServerFile("zero.bin", c.fx.Zero)
	c.expectLocalFile("zero.bin", c.fx.Zero)
	c.expectServerFile("rs.bin", c.fx.Src)
	c.expectLocalFile("seed-resumed.bin", c.fx.Seed)
	c.expectServerAbsent("up.bin")
	c.expectServerFile("renamed.bin", c.fx.Src)
	c.expectServerAbsent("gone.bin")
	for _, want := range []string{"MDTM seed.bin", "REST "} {
		if !strings.Contains(transcript, "---> "+want) {
			c.errorf("lftp never sent %q", want)
		}
	}
	compareTree(c, c.fx.Tree, c.srv.path(c.Dir+"/tree"), "mirror -R (on the backend)")
	compareTree(c, c.fx.Tree, filepath.Join(c.Local, "tree"), "mirror (downloaded)")
}

// checkMode asserts from lftp's debug log that it used the cell's data mode.
func (lftpKind) checkMode(c *cell, transcript string) {
	want := map[dataMode]string{dataPASV: "---> PASV", dataEPSV: "---> EPSV", dataPORT: "---> PORT "}[c.mode.Data]
	if want != "" && !strings.Contains(transcript, want) {
		c.errorf("lftp never sent %q", strings.TrimPrefix(want, "---> "))
	}
}

// compareTree checks that got has exactly the files of want, with the same
// SHA-256 each.
func compareTree(c *cell, want, got, what string) {
	n, bad := 0, 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		n++
		if fileSum(p) != fileSum(filepath.Join(got, rel)) {
			bad++
			if bad <= 3 {
				c.errorf("%s: %s differs or is missing", what, rel)
			}
		}
		return nil
	})
	if err != nil {
		c.errorf("%s: %v", what, err)
	}
	extra := 0
	_ = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			extra++
		}
		return nil
	})
	if bad > 0 || extra != n {
		c.errorf("%s: %d of %d files differ; %d files there", what, bad, n, extra)
	}
}
