package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// opsTree is rclone's operation set: copy up, check --download, copy down,
// sync up (a file changed, one deleted, one added), sync down and purge of
// a 20-file tree in 3 directories, with --transfers 8 --checkers 8.
const opsTree opSet = "tree"

// rcloneKind is rclone (Debian's), FTP backend, configured on the fly from
// RCLONE_CONFIG_GW_* variables: explicit_tls or tls (implicit), PASV with
// disable_epsv (EPSV otherwise), TLS 1.2 with disable_tls13. rclone keeps a
// pool of control connections and one TLS session cache for all of them, so
// a data connection often resumes the session of another of its control
// connections: issue 12, what data_session_reuse: user lets through.
type rcloneKind struct{}

func (rcloneKind) Name() string { return "rclone" }

func (rcloneKind) Unsupported(m cellMode) string {
	if m.Data.active() {
		return "rclone's FTP backend has no active mode"
	}
	return ""
}

// rcloneTree is the local tree rclone copies: 20 files of 1 B to 96 KiB in
// 3 directories, made once per run.
var rcloneTree = sync.OnceValues(func() (string, error) {
	dir := filepath.Join(workDir, "rclone-tree")
	for i := range 20 {
		sub := filepath.Join(dir, []string{"a", "b c", "a/deep"}[i%3])
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return "", err
		}
		name := fmt.Sprintf("f%02d.bin", i)
		if i%7 == 0 {
			name = fmt.Sprintf("f %02d ü.bin", i)
		}
		if err := randomFile(filepath.Join(sub, name), int64(1+(i*7919)%(96<<10))); err != nil {
			return "", err
		}
	}
	return dir, nil
})

// copyTree copies the regular files of src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

func (rcloneKind) Run(ctx context.Context, c *cell, ops opSet) {
	bin := requireProgram(c.t, "rclone", "/usr/bin")
	tree, err := rcloneTree()
	if err != nil {
		c.errorf("tree: %v", err)
		return
	}
	obscured, err := exec.CommandContext(ctx, bin, "obscure", c.srv.User.Password).Output()
	if err != nil {
		c.errorf("rclone obscure: %v", err)
		return
	}
	host, port := hostPort(c.t, c.addr())
	home := c.t.TempDir()
	env := append(os.Environ(),
		"HOME="+home,
		"RCLONE_CONFIG="+filepath.Join(home, "rclone.conf"), // absent: only the variables below
		"RCLONE_CONFIG_GW_TYPE=ftp",
		"RCLONE_CONFIG_GW_HOST="+host,
		"RCLONE_CONFIG_GW_PORT="+strconv.Itoa(port),
		"RCLONE_CONFIG_GW_USER="+c.srv.User.Name,
		"RCLONE_CONFIG_GW_PASS="+strings.TrimSpace(string(obscured)),
		"RCLONE_CONFIG_GW_NO_CHECK_CERTIFICATE=true", // the gateway's generated certificate
		"RCLONE_CONFIG_GW_DISABLE_EPSV="+strconv.FormatBool(c.mode.Data == dataPASV),
		"RCLONE_CONFIG_GW_DISABLE_TLS13="+strconv.FormatBool(c.mode.TLS == "1.2"),
	)
	if c.mode.Front == tlsImplicit {
		env = append(env, "RCLONE_CONFIG_GW_TLS=true")
	} else {
		env = append(env, "RCLONE_CONFIG_GW_EXPLICIT_TLS=true")
	}

	remote := "gw:" + c.Dir + "/tree"
	failed := false
	run := func(args ...string) bool {
		if failed {
			return false
		}
		all := append([]string{"--transfers", "8", "--checkers", "8", "--retries", "1", "--low-level-retries", "1",
			"--contimeout", "20s", "--timeout", "60s", "-vv"}, args...)
		cmd := exec.CommandContext(ctx, bin, all...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		start := time.Now()
		err := cmd.Run()
		transcript := strings.ReplaceAll(out.String(), c.srv.User.Password, "***")
		c.logf("$ rclone %s (%v)\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), transcript)
		if err != nil {
			c.errorf("rclone %s: %v: %s", args[0], err, lastLines(transcript, 3))
			failed = true
			return false
		}
		return true
	}

	// The destination exists: pyftpdlib answers MLSD of a missing directory
	// with 501, not 550, and rclone then gives up on the copy (directly too).
	c.srv.mkdir(c.t, c.Dir+"/tree")
	// Up, checked by downloading, down.
	if run("copy", tree, remote) {
		compareTree(c, tree, c.srv.path(c.Dir+"/tree"), "copy up (on the backend)")
	}
	run("check", "--download", tree, remote)
	if run("copy", remote, filepath.Join(c.Local, "down")) {
		compareTree(c, tree, filepath.Join(c.Local, "down"), "copy down")
	}
	// Sync up a changed tree: one file rewritten, one gone, one new.
	changed := filepath.Join(c.Local, "changed")
	if err := copyTree(tree, changed); err != nil {
		c.errorf("%v", err)
		return
	}
	for _, step := range []error{
		randomFile(filepath.Join(changed, "a", "f00 changed.bin"), 5000),
		os.Remove(filepath.Join(changed, "b c", "f01.bin")),
		randomFile(filepath.Join(changed, "a", "f03.bin"), 7777),
	} {
		if step != nil {
			c.errorf("%v", step)
			return
		}
	}
	if run("sync", changed, remote) {
		compareTree(c, changed, c.srv.path(c.Dir+"/tree"), "sync up (on the backend)")
	}
	if run("sync", remote, filepath.Join(c.Local, "down")) {
		compareTree(c, changed, filepath.Join(c.Local, "down"), "sync down")
	}
	if run("purge", remote) {
		c.expectServerAbsent("tree")
	}
}

// rcloneBackends are the backends rclone meets: the ones issue 12 names,
// all requiring TLS on data connections.
var rcloneBackends = []backendSpec{{kindVsftpd, tlsExplicit}, {kindProftpd, tlsExplicit}, {kindPyftpdlib, tlsExplicit}}

// TestRcloneMatrix is issue 12's acceptance: rclone copy, check --download,
// sync and purge with 8 transfers and 8 checkers through the gateway, in
// its default data_session_reuse (user), to vsftpd (require_ssl_reuse=YES),
// ProFTPD (mod_tls, which requires reuse too) and pyftpdlib, in every
// passive mode of the matrix (explicit and implicit front, PASV and EPSV,
// TLS 1.2 and 1.3). The cells join the matrix's table (COMPAT.md). The
// same rclone straight against ProFTPD fails (425: mod_tls wants each data
// connection to resume its own control connection's session), and against
// pyftpdlib needs the destination directory to exist (see Run).
func TestRcloneMatrix(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	fx := getFixtures(t)
	for _, spec := range rcloneBackends {
		t.Run(spec.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 5*time.Minute)
			srv := startServer(ctx, t, spec)
			cfg := newGatewayConfig(t, srv.Addr, spec.Mode, srv.CAFile)
			// 8 transfers and 8 checkers hold up to 16 data connections at
			// once: the default max_passive_per_ip (half the range) needs 32
			// ports, and the range is sized for that (README).
			cfg.PassiveLo, cfg.PassiveHi = portRange(t, 40)
			gw := startGateway(ctx, t, cfg)
			start := time.Now()
			for _, m := range cellModes {
				if (rcloneKind{}).Unsupported(m) == "" { // the passive ones
					runCell(ctx, t, gw, srv, fx, rcloneKind{}, m, opsTree)
				}
			}
			t.Logf("%s: %v", spec, time.Since(start).Round(time.Millisecond))
			gw.assertLogOmits(t, srv.User.Password)
		})
	}
}
