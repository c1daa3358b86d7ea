package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/auth/totp"
)

// totpUser is an edge user of the gateway's local users file, enrolled in
// TOTP with the gateway's own CLI.
type totpUser struct {
	Name, Password, Secret string
}

// code is the user's current TOTP code.
func (u totpUser) code(t *testing.T) string {
	t.Helper()
	c, err := totp.Code(u.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ftpsgateCLI runs the built binary with args and stdin.
func ftpsgateCLI(ctx context.Context, t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, gatewayBinary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("ftpsgate %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// enrolTOTPUsers creates a users file with each name as a user who needs
// [password, totp] (ftpsgate users add, then users totp), and returns the
// file and the users with their secrets (read from the otpauth:// URI the
// enrolment prints).
func enrolTOTPUsers(ctx context.Context, t *testing.T, dir string, names ...string) (string, []totpUser) {
	t.Helper()
	file := filepath.Join(dir, "users.yaml")
	var users []totpUser
	for _, n := range names {
		u := totpUser{Name: n, Password: randomSecret(t, "Totp-Pass-")}
		ftpsgateCLI(ctx, t, u.Password+"\n", "users", "add", "--file", file, "--password-stdin", "--factors", "password,totp", n)
		out := ftpsgateCLI(ctx, t, "", "users", "totp", "--file", file, n)
		for _, line := range strings.Split(out, "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(line), "otpauth://"); ok {
				uri, err := url.Parse("otpauth://" + s)
				if err != nil {
					t.Fatalf("users totp %s: %v", n, err)
				}
				u.Secret = uri.Query().Get("secret")
			}
		}
		if u.Secret == "" {
			t.Fatalf("users totp %s printed no otpauth:// URI with a secret:\n%s", n, out)
		}
		users = append(users, u)
	}
	return file, users
}

// totpGateway runs vsftpd (explicit FTPS, the harness's PAM account) and a
// gateway in auth.mode gateway whose local users (one per client, so that
// no two logins use the same code) need [password, totp] and map to the
// vsftpd account.
func totpGateway(ctx context.Context, t *testing.T, names ...string) (*gateway, *ftpServer, []totpUser) {
	t.Helper()
	srv := startServer(ctx, t, backendSpec{kindVsftpd, tlsExplicit})
	dir := t.TempDir()
	file, users := enrolTOTPUsers(ctx, t, dir, names...)
	pw := filepath.Join(dir, "backend-password")
	if err := os.WriteFile(pw, []byte(srv.User.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := newGatewayConfig(t, srv.Addr, tlsExplicit, srv.CAFile)
	cfg.Extra = fmt.Sprintf(`auth:
  mode: gateway
  providers: [local]
  local:
    users_file: %s
  backend:
    user: %s
    password_file: %s
`, file, srv.User.Name, pw)
	return startGateway(ctx, t, cfg), srv, users
}

// asUser is srv as an edge user sees it: the harness's client runners log
// in with srv.User, here the edge name and the password with the code
// appended; the files still belong to the backend account.
func asUser(srv *ftpServer, name, password string) *ftpServer {
	s := *srv
	s.User.Name, s.User.Password = name, password
	return &s
}

// smallFixtures are the two files the basic operations move (up.bin up,
// seed.bin down), without the matrix's big ones.
func smallFixtures(t *testing.T) *fixtures {
	t.Helper()
	dir := t.TempDir()
	fx := &fixtures{Src: filepath.Join(dir, "src.bin"), Seed: filepath.Join(dir, "seed.bin")}
	for p, size := range map[string]int64{fx.Src: 100 << 10, fx.Seed: 300 << 10} {
		if err := randomFile(p, size); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// runClient runs one client runner's basic operations (login, directory
// commands, STOR up.bin, RETR seed.bin, NLST, LIST; the files' SHA-256
// checked on the backend's disk and locally) as user, in a fresh directory.
func runClient(ctx context.Context, t *testing.T, gw *gateway, srv *ftpServer, fx *fixtures, cl ftpClientKind, mode cellMode) {
	t.Helper()
	dir := "totp-" + strings.NewReplacer("+", "-", " ", "-").Replace(cl.Name())
	srv.mkdir(t, dir)
	seed, err := os.ReadFile(fx.Seed)
	if err != nil {
		t.Fatal(err)
	}
	srv.putFile(t, dir+"/seed.bin", seed)
	c := &cell{t: t, gw: gw, srv: srv, fx: fx, mode: mode, ops: opsBasic, client: cl.Name(), Dir: dir, Local: t.TempDir()}
	logStart := fileSize(gw.proc.LogPath)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cl.Run(cctx, c, opsBasic)
	if len(c.errs) > 0 {
		t.Errorf("%s\n%s\n%s\n%s", strings.Join(c.errs, "\n"), tail("transcript", c.transcript.String(), 12000),
			tail("gateway log", gw.logSince(logStart), 20000), srv.diagnostics())
	}
}

// TestTOTPClients is issue 12's TOTP interop: curl, lftp and Python's
// ftplib log in through the gateway (auth.mode gateway, local users
// enrolled with `ftpsgate users`) with the code appended to the password,
// against vsftpd, and move files both ways (SHA-256 checked). Each client
// has its own user: a code is accepted once per user.
func TestTOTPClients(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 4*time.Minute)
	gw, srv, users := totpGateway(ctx, t, "tc-curl", "tc-lftp", "tc-ftplib")
	fx := smallFixtures(t)
	var secrets []string
	for _, u := range users {
		secrets = append(secrets, u.Password, u.Secret)
	}

	t.Run("curl", func(t *testing.T) {
		// curl logs in once per connection: the upload and the download
		// share one (--next keeps the connection), so one code serves both.
		u := users[0]
		pass := u.Password + u.code(t)
		s := asUser(srv, u.Name, pass)
		dir := "totp-curl"
		s.mkdir(t, dir)
		seed, err := os.ReadFile(fx.Seed)
		if err != nil {
			t.Fatal(err)
		}
		s.putFile(t, dir+"/seed.bin", seed)
		c := gw.client(tlsExplicit, false, ftpAccount{Name: u.Name, Password: pass})
		local := filepath.Join(t.TempDir(), "seed.bin")
		args := append(c.args(), "-T", fx.Src, c.url(dir+"/up.bin"), "--next")
		args = append(append(args, c.args()...), "-o", local, c.url(dir+"/seed.bin"))
		r := runCurl(ctx, t, args)
		if r.Err != nil {
			t.Fatalf("curl: %v\n%s\n%s", r.Err, r, gw.diagnostics())
		}
		if n := strings.Count(r.Output, "> PASS "); n != 1 {
			t.Errorf("curl logged in %d times, want once (one connection)\n%s", n, r)
		}
		assertSameFile(t, "uploaded up.bin", s.path(dir+"/up.bin"), fileSum(fx.Src), fileSize(fx.Src))
		assertSameFile(t, "downloaded seed.bin", local, fileSum(fx.Seed), fileSize(fx.Seed))

		// The same password and code again: the code was used, 530.
		again := runCurl(ctx, t, append(c.args(), c.url(dir+"/")))
		if again.Err == nil || !strings.Contains(again.Output, "\n< 530") {
			t.Errorf("a reused code was not refused with 530 (%v)\n%s", again.Err, again)
		}
	})
	t.Run("lftp", func(t *testing.T) {
		u := users[1]
		runClient(ctx, t, gw, asUser(srv, u.Name, u.Password+u.code(t)), fx, lftpKind{}, cellModes[0])
	})
	t.Run("ftplib", func(t *testing.T) {
		u := users[2]
		runClient(ctx, t, gw, asUser(srv, u.Name, u.Password+u.code(t)), fx, ftplibKind{resume: true}, cellModes[3])
	})
	// Each client's login was decided at the edge with both factors.
	log := gw.proc.Log()
	for _, u := range users {
		if !strings.Contains(log, `"user":"`+u.Name+`","backend_user":"`+srv.User.Name+`","factors":["password","totp"]`) {
			t.Errorf("no login of %s with [password totp] mapped to %s in the gateway's log\n%s", u.Name, srv.User.Name, gw.diagnostics())
		}
	}
	gw.assertLogOmits(t, secrets...)
}

// lftpScript runs an lftp script (with -d) and returns its transcript with
// the password masked, and its error.
func lftpScript(ctx context.Context, t *testing.T, script, password string) (string, error) {
	t.Helper()
	bin := requireProgram(t, "lftp", "/usr/bin")
	path := filepath.Join(t.TempDir(), "script.lftp")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, "-d", "-f", path)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return strings.ReplaceAll(out.String(), password, "***"), err
}

// TestTOTPLftpReconnect: lftp keeps the password (with the code appended)
// and sends it again whenever it opens another connection: after close
// (or a drop, or net:idle), and for a background job next to a foreground
// command, even with net:connection-limit 1 (lftp 4.9.2). The gateway
// refuses the reused code (530, "wrong or replayed totp code" in its log),
// and lftp gives up on that connection instead of retrying (its
// ftp:retry-530 patterns do not match "Login incorrect"). docs/
// authentication.md tells lftp users what to do; this test keeps that text
// true.
func TestTOTPLftpReconnect(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 3*time.Minute)
	gw, srv, users := totpGateway(ctx, t, "tl-close", "tl-bg")
	srv.mkdir(t, "rc")
	seed := make([]byte, 16<<20)
	if _, err := io.ReadFull(rand.Reader, seed); err != nil {
		t.Fatal(err)
	}
	srv.putFile(t, "rc/seed.bin", seed)
	script := func(u totpUser, pass, extra, cmds string) string {
		return fmt.Sprintf(`set cmd:fail-exit yes
set net:max-retries 2
set net:timeout 10
set net:reconnect-interval-base 1
set ftp:ssl-force true
set ftp:ssl-protect-data true
set ssl:verify-certificate no
set ssl:check-hostname no
set cache:enable no
%sopen -u %s,%s ftp://%s
%s`, extra, lftpQuote(u.Name), lftpQuote(pass), gw.Config.ExplicitAddr, cmds)
	}
	logins := func(out string) (pass, ok, refused int) {
		return strings.Count(out, "---> PASS "), strings.Count(out, "<--- 230 "), strings.Count(out, "<--- 530 ")
	}

	t.Run("close_then_reconnect", func(t *testing.T) {
		u := users[0]
		pass := u.Password + u.code(t)
		out, err := lftpScript(ctx, t, script(u, pass, "", "cls rc\nclose\ncls rc\n"), pass)
		p, ok, refused := logins(out)
		if err == nil || p != 2 || ok != 1 || refused != 1 {
			t.Errorf("lftp after close: exit %v, %d PASS, %d 230, %d 530; want a failure, 2, 1, 1\n%s", err, p, ok, refused, out)
		}
	})
	t.Run("background_job", func(t *testing.T) {
		u := users[1]
		pass := u.Password + u.code(t)
		local := filepath.Join(t.TempDir(), "seed.bin")
		out, err := lftpScript(ctx, t, script(u, pass, "set net:connection-limit 1\n",
			"cls rc\nget rc/seed.bin -o "+lftpQuote(local)+" &\ncls rc\nwait all\n"), pass)
		p, ok, refused := logins(out)
		t.Logf("lftp with a background job and net:connection-limit 1: exit %v, %d PASS, %d 230, %d 530", err, p, ok, refused)
		if ok != 1 || p > 2 || p != ok+refused {
			t.Errorf("want one accepted login and at most one refused reuse of the code\n%s", out)
		}
		if p == 2 && fileSum(local) != sumBytes(seed) {
			t.Errorf("the background download on the first connection did not complete\n%s", out)
		}
	})
	if log := gw.proc.Log(); !strings.Contains(log, "wrong or replayed totp code") {
		t.Errorf("the gateway's log does not say why the reused code was refused\n%s", gw.diagnostics())
	}
	gw.assertLogOmits(t, users[0].Password, users[1].Password, users[0].Secret, users[1].Secret)
}

// ftplibACCT is Python's ftplib logging in with the password alone and the
// code as the account (login(user, passwd, acct), sent with ACCT after the
// 332), then STOR and RETR; data connections resume the control session.
const ftplibACCT = `
import ftplib, ssl, sys
host, port, user, pw, code, src, dst = sys.argv[1:8]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
class C(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = C(context=ctx, timeout=30)
f.set_debuglevel(1)
f.connect(host, int(port))
print(f.login(user, pw, acct=code), flush=True)
f.prot_p()
f.cwd("acct-ftplib")
with open(src, "rb") as s:
    f.storbinary("STOR up.bin", s)
with open(dst, "wb") as d:
    f.retrbinary("RETR seed.bin", d.write)
f.quit()
`

// TestTOTPAcct: lftp (set ftp:acct) and Python's ftplib (login with acct)
// send the password alone, get the gateway's 332 and answer with ACCT and
// the code, then move files both ways.
func TestTOTPAcct(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 3*time.Minute)
	gw, srv, users := totpGateway(ctx, t, "ta-lftp", "ta-ftplib")
	fx := smallFixtures(t)
	seed, err := os.ReadFile(fx.Seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"acct-lftp", "acct-ftplib"} {
		srv.mkdir(t, d)
		srv.putFile(t, d+"/seed.bin", seed)
	}

	t.Run("lftp", func(t *testing.T) {
		u := users[0]
		code := u.code(t)
		local := filepath.Join(t.TempDir(), "seed.bin")
		out, err := lftpScript(ctx, t, fmt.Sprintf(`set cmd:fail-exit yes
set net:max-retries 1
set ftp:ssl-force true
set ftp:ssl-protect-data true
set ssl:verify-certificate no
set ssl:check-hostname no
set ftp:acct %s
open -u %s,%s ftp://%s
cd acct-lftp
put %s -o up.bin
get seed.bin -o %s
`, lftpQuote(code), lftpQuote(u.Name), lftpQuote(u.Password), gw.Config.ExplicitAddr, lftpQuote(fx.Src), lftpQuote(local)), u.Password)
		if err != nil {
			t.Fatalf("lftp: %v\n%s\n%s", err, out, gw.diagnostics())
		}
		if !strings.Contains(out, "<--- 332 ") || !strings.Contains(out, "---> ACCT ") {
			t.Errorf("lftp did not answer 332 with ACCT\n%s", out)
		}
		assertSameFile(t, "lftp's upload", srv.path("acct-lftp/up.bin"), fileSum(fx.Src), fileSize(fx.Src))
		assertSameFile(t, "lftp's download", local, fileSum(fx.Seed), fileSize(fx.Seed))
	})
	t.Run("ftplib", func(t *testing.T) {
		u := users[1]
		host, port := hostPort(t, gw.Config.ExplicitAddr)
		local := filepath.Join(t.TempDir(), "seed.bin")
		cmd := exec.CommandContext(ctx, systemPython, "-c", ftplibACCT, host, fmt.Sprint(port), u.Name, u.Password, u.code(t), fx.Src, local)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil {
			t.Fatalf("ftplib: %v\n%s\n%s", err, strings.ReplaceAll(out.String(), u.Password, "***"), gw.diagnostics())
		}
		if !strings.Contains(out.String(), "332") || !strings.Contains(out.String(), "*cmd* 'ACCT ") {
			t.Errorf("ftplib did not answer 332 with ACCT\n%s", strings.ReplaceAll(out.String(), u.Password, "***"))
		}
		assertSameFile(t, "ftplib's upload", srv.path("acct-ftplib/up.bin"), fileSum(fx.Src), fileSize(fx.Src))
		assertSameFile(t, "ftplib's download", local, fileSum(fx.Seed), fileSize(fx.Seed))
	})
	gw.assertLogOmits(t, users[0].Password, users[1].Password, users[0].Secret, users[1].Secret)
}
