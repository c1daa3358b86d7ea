package interop

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/internal/testslapd"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// The directory TestLDAPGateway loads into a real slapd: people under
// ou=people, groupOfNames groups under ou=groups (memberOf maintained by
// slapd's overlay), and a service account for search mode.
const (
	ldapReaderDN = "cn=reader," + testslapd.Suffix
	ldapTimeout  = 2 * time.Second // auth.ldap.timeout and dial_timeout
)

// ldapPeople are the directory's users and their groups.
var ldapPeople = []struct{ uid, group string }{
	{"alice", "staff"}, {"carol", "partners"}, {"dave", "partners"}, {"frank", "partners"}, {"erin", ""},
}

// ldapWorld is what the LDAP cases share: the passwords, the backend
// (pyftpdlib with one account per mapping target) and the secret files.
type ldapWorld struct {
	pw      map[string]string // directory passwords, by uid and "reader"
	backend string            // the backend's address
	roots   map[string]string // backend account -> its directory
	secrets string            // directory of the password files
	totp    map[string]string // TOTP secrets of the partners (profile-only local entries)

	backendLog string // pyftpdlib's log
}

// backendSessions counts the connections the backend has accepted so far.
func (w *ldapWorld) backendSessions(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(w.backendLog)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "FTP session opened (connect)")
}

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	var b [9]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func (w *ldapWorld) ldif() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: %s\n\n",
		ldapReaderDN, testslapd.SSHA(w.pw["reader"]))
	members := map[string][]string{}
	for _, p := range ldapPeople {
		fmt.Fprintf(&b, "dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n\n",
			p.uid, testslapd.PeopleDN, p.uid, p.uid, p.uid, testslapd.SSHA(w.pw[p.uid]))
		if p.group != "" {
			members[p.group] = append(members[p.group], "uid="+p.uid+","+testslapd.PeopleDN)
		}
	}
	for _, g := range []string{"partners", "staff"} {
		fmt.Fprintf(&b, "dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n", g, testslapd.GroupsDN, g)
		for _, m := range members[g] {
			fmt.Fprintf(&b, "member: %s\n", m)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// startDirectory runs a new slapd with the world's directory.
func (w *ldapWorld) startDirectory(t *testing.T) *testslapd.Server {
	t.Helper()
	s := testslapd.Start(t)
	s.AddLDIF(t, w.ldif())
	return s
}

// secretFile writes a secret into a 0600 file and returns its path.
func (w *ldapWorld) secretFile(t *testing.T, name, secret string) string {
	t.Helper()
	p := filepath.Join(w.secrets, name)
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newLDAPWorld starts the backend: pyftpdlib (plain FTP on loopback) with
// three accounts, so that the test sees on disk which account a login was
// mapped to. No system account is involved.
func newLDAPWorld(ctx context.Context, t *testing.T) *ldapWorld {
	t.Helper()
	w := &ldapWorld{pw: map[string]string{}, roots: map[string]string{}, totp: map[string]string{}}
	w.pw["reader"] = randomSecret(t, "Reader-")
	for _, p := range ldapPeople {
		w.pw[p.uid] = randomSecret(t, "Ldap-"+p.uid+"-")
	}
	for _, u := range []string{"carol", "dave", "frank", "erin"} {
		var key [20]byte
		if _, err := io.ReadFull(rand.Reader, key[:]); err != nil {
			t.Fatal(err)
		}
		w.totp[u] = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key[:])
	}
	dir := newDir(t, "ldap-", 0o700)
	w.secrets = filepath.Join(dir, "secrets")
	if err := os.Mkdir(w.secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	if _, err := os.Stat(systemPython); err != nil {
		t.Fatalf("%s: %v (apt-get install python3-pyftpdlib)", systemPython, err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "pyftpd_server.py"))
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, acct := range []string{"fallback-acct", "partner-acct", "staff-acct"} {
		root := filepath.Join(dir, acct)
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		w.roots[acct] = root
		w.pw[acct] = randomSecret(t, "Backend-")
		users = append(users, acct+"\t"+w.pw[acct]+"\t"+root)
	}
	port := freePort(t)
	lo, hi := portRange(t, 20)
	w.backend = loopbackAddr(port)
	first := strings.Split(users[0], "\t")
	w.backendLog = filepath.Join(dir, "pyftpd.log")
	proc := startProcess(t, "pyftpdlib(ldap)", filepath.Join(dir, "pyftpd.log"),
		"/usr/bin/env", "PYFTPD_EXTRA_USERS="+strings.Join(users[1:], "\n"),
		systemPython, script, "127.0.0.1", fmt.Sprint(port), fmt.Sprint(lo), fmt.Sprint(hi), first[2], first[0], first[1])
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	waitForPort(wctx, t, w.backend, proc)
	return w
}

// gatewayAuth starts a gateway in front of the world's backend with auth
// as its auth section; every unmapped user logs in as fallback-acct.
func (w *ldapWorld) gateway(ctx context.Context, t *testing.T, authYAML string) *gateway {
	t.Helper()
	cfg := newGatewayConfig(t, w.backend, tlsNone, "")
	cfg.Extra = authYAML + fmt.Sprintf("  backend:\n    user: fallback-acct\n    password_file: %s\n",
		w.secretFile(t, "fallback", w.pw["fallback-acct"]))
	return startGateway(ctx, t, cfg)
}

func ldapDurations() string {
	return fmt.Sprintf("    timeout: %s\n    dial_timeout: %s\n", yamlDuration(ldapTimeout), yamlDuration(ldapTimeout))
}

// bindModeYAML is bind mode over LDAPS, as an administrator writes it.
func bindModeYAML(s *testslapd.Server) string {
	return fmt.Sprintf(`auth:
  mode: gateway
  providers: [ldap]
  ldap:
    url: [%s]
    ca_file: %s
    bind_dn_template: "uid=%%s,%s"
`, s.LDAPSURL, s.CAFile, testslapd.PeopleDN) + ldapDurations()
}

// localFile writes a users file with profile-only entries (no password:
// the directory checks it) that hold the partners' TOTP secrets.
func (w *ldapWorld) localFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("users:\n")
	for _, u := range []string{"carol", "dave"} {
		fmt.Fprintf(&b, "  %s:\n    totp_secret: %s\n", u, w.totp[u])
	}
	// frank's entry names the factors his group requires too: the gateway
	// then knows before asking the directory that PASS ends in a code.
	fmt.Fprintf(&b, "  frank:\n    totp_secret: %s\n    factors: [password, totp]\n", w.totp["frank"])
	// erin is in no group: only her own entry asks for a code.
	fmt.Fprintf(&b, "  erin:\n    totp_secret: %s\n    factors: [password, totp]\n", w.totp["erin"])
	p := filepath.Join(w.secrets, "users.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ldapUpload uploads a fresh random file as user and checks that it landed,
// intact, in acct's directory on the backend.
func (w *ldapWorld) upload(ctx context.Context, t *testing.T, c curlClient, acct, name string) curlRun {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	if err := randomFile(src, 200<<10); err != nil {
		t.Fatal(err)
	}
	r := c.upload(ctx, t, src, name)
	if r.Err != nil {
		t.Errorf("%s: upload %s: %v\n%s", c.User, name, r.Err, r)
		return r
	}
	if got, want := fileSum(filepath.Join(w.roots[acct], name)), fileSum(src); got != want {
		t.Errorf("%s: %s in %s's directory has SHA-256 %s, want %s", c.User, name, acct, got, want)
	}
	return r
}

// download places a random file in acct's directory, downloads it as the
// client and compares.
func (w *ldapWorld) download(ctx context.Context, t *testing.T, c curlClient, acct, name string) curlRun {
	t.Helper()
	src := filepath.Join(w.roots[acct], name)
	if err := randomFile(src, 200<<10); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	r := c.download(ctx, t, name, dst)
	if r.Err != nil {
		t.Errorf("%s: download %s: %v\n%s", c.User, name, r.Err, r)
		return r
	}
	if got, want := fileSum(dst), fileSum(src); got != want {
		t.Errorf("%s: downloaded %s has SHA-256 %s, want %s", c.User, name, got, want)
	}
	return r
}

func expectReply(t *testing.T, what string, r curlRun, code int, gw *gateway) {
	t.Helper()
	if !strings.Contains(r.Output, fmt.Sprintf("\n< %d", code)) {
		t.Errorf("%s: no %d reply\n%s\n%s", what, code, r, gw.diagnostics())
	}
}

// TestLDAPGateway is issue 12's LDAP acceptance against a real OpenLDAP
// slapd (internal/testslapd) and the built gateway binary, configured by
// its YAML auth section, in front of a real FTP server (pyftpdlib, with one
// account per mapping target): bind mode over LDAPS, search-then-bind with
// a service account over StartTLS, groups mapped to factors and backend
// accounts (TOTP from a profile-only local entry), and a directory that
// hangs or dies (421 within the LDAP timeout, a log line, then recovery).
func TestLDAPGateway(t *testing.T) {
	requireInterop(t)
	testslapd.Require(t)
	t.Parallel()
	ctx := testContext(t, 4*time.Minute)
	w := newLDAPWorld(ctx, t)

	t.Run("bind_ldaps", func(t *testing.T) {
		results.record(t)
		s := w.startDirectory(t)
		gw := w.gateway(ctx, t, bindModeYAML(s))
		c := gw.client(tlsExplicit, false, ftpAccount{Name: "erin", Password: w.pw["erin"]})
		w.upload(ctx, t, c, "fallback-acct", "bind-up.bin")
		w.download(ctx, t, c, "fallback-acct", "bind-down.bin")

		bad := c
		bad.Password = w.pw["alice"] // a real password, of another user
		r := runCurl(ctx, t, append(bad.args(), bad.url("")))
		if r.Err == nil {
			t.Errorf("erin logged in with alice's password\n%s", r)
		}
		expectReply(t, "wrong password", r, 530, gw)

		// An empty password is refused without a bind (an LDAP
		// unauthenticated bind would succeed).
		binds := strings.Count(slapdLog(t, s), " BIND ")
		if binds == 0 {
			t.Fatalf("slapd's log shows no BIND after three logins: the count does not work\n%s", s.LogTail())
		}
		bad.Password = ""
		r = runCurl(ctx, t, append(bad.args(), bad.url("")))
		if r.Err == nil {
			t.Errorf("erin logged in with an empty password\n%s", r)
		}
		expectReply(t, "empty password", r, 530, gw)
		if n := strings.Count(slapdLog(t, s), " BIND ") - binds; n != 0 {
			t.Errorf("an empty password cost %d binds, want none", n)
		}
		gw.assertLogOmits(t, w.pw["erin"], w.pw["alice"], w.pw["fallback-acct"])
	})

	t.Run("search_starttls", func(t *testing.T) {
		results.record(t)
		s := w.startDirectory(t)
		// Groups from a group search (memberOf turned off), alice's staff
		// group mapped to its account.
		gw := w.gateway(ctx, t, w.searchModeYAML(t, s)+fmt.Sprintf(`    group_base_dn: "%s"
    group_attribute: "-"
  groups:
    - name: staff
      backend_user: staff-acct
      backend_password_file: %s
`, testslapd.GroupsDN, w.secretFile(t, "staff", w.pw["staff-acct"])))
		c := gw.client(tlsImplicit, true, ftpAccount{Name: "alice", Password: w.pw["alice"]})
		w.upload(ctx, t, c, "staff-acct", "search-up.bin")
		w.download(ctx, t, c, "staff-acct", "search-down.bin")
		c = gw.client(tlsImplicit, true, ftpAccount{Name: "erin", Password: w.pw["erin"]})
		w.upload(ctx, t, c, "fallback-acct", "search-up.bin")

		// Failed logins never reach the backend.
		sessions := w.backendSessions(t)
		if sessions < 3 {
			t.Fatalf("pyftpdlib's log shows %d sessions after three logins: the count does not work", sessions)
		}
		for _, acct := range []ftpAccount{{Name: "alice", Password: w.pw["dave"]}, {Name: "nobody", Password: w.pw["dave"]}} {
			bad := gw.client(tlsImplicit, true, acct)
			r := runCurl(ctx, t, append(bad.args(), bad.url("")))
			if r.Err == nil {
				t.Errorf("%s logged in with a wrong password\n%s", acct.Name, r)
			}
			expectReply(t, acct.Name+" with a wrong password", r, 530, gw)
		}
		if n := w.backendSessions(t) - sessions; n != 0 {
			t.Errorf("%d backend connections for failed logins, want none", n)
		}
		gw.assertLogOmits(t, w.pw["alice"], w.pw["dave"], w.pw["reader"], w.pw["staff-acct"])
	})

	t.Run("groups", func(t *testing.T) {
		results.record(t)
		s := w.startDirectory(t)
		gw := w.gateway(ctx, t, fmt.Sprintf(`auth:
  mode: gateway
  providers: [local, ldap]
  local:
    users_file: %s
  groups:
    - name: partners
      factors: [password, totp]
      backend_user: partner-acct
      backend_password_file: %s
    - name: staff
      backend_user: staff-acct
      backend_password_file: %s
`, w.localFile(t), w.secretFile(t, "partner", w.pw["partner-acct"]), w.secretFile(t, "staff", w.pw["staff-acct"]))+
			strings.TrimPrefix(bindModeYAML(s), "auth:\n  mode: gateway\n  providers: [ldap]\n"))

		// Staff: the password alone, mapped to staff-acct.
		staff := gw.client(tlsExplicit, false, ftpAccount{Name: "alice", Password: w.pw["alice"]})
		w.upload(ctx, t, staff, "staff-acct", "staff-up.bin")

		// A partner without the code: 332, and curl (no --ftp-account)
		// gives up.
		carol := gw.client(tlsExplicit, false, ftpAccount{Name: "carol", Password: w.pw["carol"]})
		r := runCurl(ctx, t, append(carol.args(), carol.url("")))
		if r.Err == nil {
			t.Errorf("carol listed without a one-time code\n%s", r)
		}
		expectReply(t, "partner without a code", r, 332, gw)

		// With the code sent by ACCT (curl --ftp-account): 230, mapped to
		// partner-acct.
		code, err := totp.Code(w.totp["carol"], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		carol.Extra = []string{"--ftp-account", code}
		r = w.upload(ctx, t, carol, "partner-acct", "partner-up.bin")
		expectReply(t, "partner with ACCT", r, 332, gw)
		expectReply(t, "partner with ACCT", r, 230, gw)
		if !strings.Contains(r.Output, "> ACCT ") {
			t.Errorf("curl did not send ACCT\n%s", r)
		}

		// The other partner appends the code to the password.
		code, err = totp.Code(w.totp["dave"], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		dave := gw.client(tlsExplicit, false, ftpAccount{Name: "dave", Password: w.pw["dave"] + code})
		before := failedBinds(t, s)
		r = w.download(ctx, t, dave, "partner-acct", "partner-down.bin")
		// Only the group says dave needs a code: the gateway asks the
		// directory with the whole PASS first (it might be a password
		// that ends in digits), which the directory counts as a failed
		// bind, then with the code cut off.
		if n := failedBinds(t, s) - before; n > 1 {
			t.Errorf("dave's login cost %d failed binds, want at most 1", n)
		}
		if strings.Contains(r.Output, "\n< 332") {
			t.Errorf("a code appended to the password still got 332\n%s", r)
		}

		// frank's profile names [password, totp]: the code is cut off
		// first and the directory sees no failed bind.
		code, err = totp.Code(w.totp["frank"], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		frank := gw.client(tlsExplicit, false, ftpAccount{Name: "frank", Password: w.pw["frank"] + code})
		before = failedBinds(t, s)
		r = w.upload(ctx, t, frank, "partner-acct", "frank-up.bin")
		if n := failedBinds(t, s) - before; n != 0 {
			t.Errorf("frank's login cost %d failed binds, want none\n%s", n, s.LogTail())
		}
		// The directory matches names without regard to case; the entry
		// that asks erin for a code must apply to every spelling of her
		// name, and her login is hers (canonical name, her mapping).
		for _, name := range []string{"erin", "ERIN", "Erin"} {
			c := gw.client(tlsExplicit, false, ftpAccount{Name: name, Password: w.pw["erin"]})
			r := runCurl(ctx, t, append(c.args(), c.url("")))
			if r.Err == nil || !strings.Contains(r.Output, "\n< 332") {
				t.Errorf("%s with erin's password and no code: want 332 and no login (%v)\n%s", name, r.Err, r)
			}
		}
		gw.assertLogOmits(t, w.pw["alice"], w.pw["carol"], w.pw["dave"], w.pw["partner-acct"], w.pw["staff-acct"], w.totp["carol"], w.totp["dave"], w.pw["frank"], w.totp["frank"])
	})

	t.Run("directory_down", func(t *testing.T) {
		results.record(t)
		s := w.startDirectory(t)
		gw := w.gateway(ctx, t, bindModeYAML(s))
		erin := gw.client(tlsExplicit, false, ftpAccount{Name: "erin", Password: w.pw["erin"]})
		if r := runCurl(ctx, t, append(erin.args(), erin.url(""))); r.Err != nil {
			t.Fatalf("login with the directory up: %v\n%s\n%s", r.Err, r, gw.diagnostics())
		}

		// A directory that hangs (SIGSTOP: connections are accepted into the
		// backlog, nothing answers) and one that is gone (SIGKILL).
		limit := 2*ldapTimeout + 3*time.Second // dial (TLS handshake) + one operation + slack
		s.Freeze(t)
		loginUnavailable(t, gw, "frozen directory", w.pw["erin"], limit, func() string { return slapdState(s) })
		s.Thaw(t)
		s.Kill(t)
		loginUnavailable(t, gw, "killed directory", w.pw["erin"], limit, func() string { return slapdState(s) })
		r := runCurl(ctx, t, append(erin.args(), erin.url("")))
		if r.Err == nil {
			t.Errorf("curl logged in with the directory dead\n%s", r)
		}
		expectReply(t, "curl with the directory dead", r, 421, gw)
		if r.Duration > limit {
			t.Errorf("curl took %v with the directory dead, want at most %v", r.Duration, limit)
		}
		if log := gw.proc.Log(); !strings.Contains(log, "authenticator unavailable") || !strings.Contains(log, "ldap") {
			t.Errorf("no log line says the directory is unavailable\n%s", gw.diagnostics())
		}
		if gw.proc.Exited() {
			t.Fatalf("the gateway exited: %v\n%s", gw.proc.Err(), gw.diagnostics())
		}

		// A new directory (new ports, hence a new gateway): logins work.
		s2 := w.startDirectory(t)
		gw2 := w.gateway(ctx, t, bindModeYAML(s2))
		erin = gw2.client(tlsExplicit, false, ftpAccount{Name: "erin", Password: w.pw["erin"]})
		w.download(ctx, t, erin, "fallback-acct", "down-again.bin")
		gw.assertLogOmits(t, w.pw["erin"])
	})

	// The directory restarts (same address) between two logins, under a
	// running gateway whose pool holds a service connection to the old
	// process: the next login works.
	t.Run("directory_restart", func(t *testing.T) {
		results.record(t)
		s := w.startDirectory(t)
		// A strict per-user lockout: three failures lock for 15m.
		gw := w.gateway(ctx, t, w.searchModeYAML(t, s)+"  lockout:\n    threshold: 2\n    delay: 50ms\n    lock_after: 3\n")
		erin := gw.client(tlsExplicit, false, ftpAccount{Name: "erin", Password: w.pw["erin"]})
		for i := 0; i < 2; i++ { // the second login reuses a pooled connection
			if r := runCurl(ctx, t, append(erin.args(), erin.url(""))); r.Err != nil {
				t.Fatalf("login with the directory up: %v\n%s\n%s", r.Err, r, gw.diagnostics())
			}
		}
		s.Kill(t)
		s.Restart(t)
		if r := runCurl(ctx, t, append(erin.args(), erin.url(""))); r.Err != nil {
			t.Errorf("first login after the directory restarted: %v\n%s\n%s", r.Err, r, gw.diagnostics())
		}
		w.upload(ctx, t, erin, "fallback-acct", "after-restart.bin")

		// More 421s than bans.max_failures (5) and auth.lockout.lock_after
		// (3) while it is down: an unavailable directory is not the
		// client's fault, so neither the address nor the user is banned or
		// locked, during the outage or once it is over.
		s.Kill(t)
		for i := 0; i < 7; i++ {
			loginUnavailable(t, gw, fmt.Sprintf("killed directory, login %d", i+1), w.pw["erin"], 2*ldapTimeout+3*time.Second, func() string { return slapdState(s) })
		}
		s.Restart(t)
		if r := runCurl(ctx, t, append(erin.args(), erin.url(""))); r.Err != nil {
			t.Errorf("login after seven 421s and the directory's restart: %v\n%s\n%s", r.Err, r, gw.diagnostics())
		}
	})
}

// searchModeYAML is search-then-bind with the service account over
// StartTLS, its connections pooled.
func (w *ldapWorld) searchModeYAML(t *testing.T, s *testslapd.Server) string {
	t.Helper()
	return fmt.Sprintf(`auth:
  mode: gateway
  providers: [ldap]
  ldap:
    url: [%s]
    start_tls: true
    ca_file: %s
    base_dn: "%s"
    bind_dn: "%s"
    bind_password_file: %s
    user_filter: "(&(objectClass=inetOrgPerson)(uid=%%s))"
`, s.URL, s.CAFile, testslapd.Suffix, ldapReaderDN, w.secretFile(t, "reader", w.pw["reader"])) + ldapDurations()
}

// loginUnavailable logs in over a raw control connection and expects 421
// within limit, then the end of the connection.
func loginUnavailable(t *testing.T, gw *gateway, what, password string, limit time.Duration, extra func() string) {
	t.Helper()
	c := dialControl(t, gw.Config.ExplicitAddr)
	c.expect(wire.StatusReady)
	c.do("AUTH TLS", wire.StatusAuthOK)
	c.startTLS()
	c.do("USER erin", wire.StatusUserOK)
	start := time.Now()
	c.send("PASS " + password)
	rep := c.read()
	if rep.Code != wire.StatusNotAvailable {
		t.Fatalf("%s: got %d %q, want 421\n%s\n%s", what, rep.Code, rep.Text(), gw.diagnostics(), extra())
	}
	if d := time.Since(start); d > limit {
		t.Errorf("%s: 421 after %v, want at most %v", what, d, limit)
	}
	t.Logf("%s: %d %s after %v", what, rep.Code, rep.Text(), time.Since(start).Round(time.Millisecond))
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadReply(); err == nil {
		t.Errorf("%s: the session goes on after 421", what)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%s: the gateway did not close the session after 421\n%s", what, gw.diagnostics())
	}
}

// slapdLog is slapd's log so far (-d stats: connections, binds, results).
func slapdLog(t *testing.T, s *testslapd.Server) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dir, "slapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// failedBinds counts the binds slapd refused for a wrong password
// (invalidCredentials, err=49) so far.
func failedBinds(t *testing.T, s *testslapd.Server) int {
	t.Helper()
	return strings.Count(slapdLog(t, s), "err=49 ")
}

// slapdState is slapd's process state and the end of its log, for failure
// messages.
func slapdState(s *testslapd.Server) string {
	st, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(readPid(s)), "status"))
	state := ""
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "State:") || strings.HasPrefix(l, "Pid:") || strings.HasPrefix(l, "PPid:") {
			state += l + "; "
		}
	}
	return fmt.Sprintf("slapd %s (%v) URL %s LDAPS %s\n%s", state, err, s.URL, s.LDAPSURL, s.LogTail())
}

func readPid(s *testslapd.Server) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "slapd.pid"))
	return string(b)
}
