package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Edge authentication end to end: the real auth.Gateway with the real
// local users file, TOTP verifier, lockout and token provider, in front of
// the demo backend, whose one account (user/password) every edge user is
// mapped to unless the test says otherwise.

// edgeParams make the users file's Argon2id hashes cheap for the tests.
var edgeParams = local.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func hashPW(t *testing.T, pw string) string {
	t.Helper()
	h, err := local.HashPassword(pw, edgeParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeUsers writes a users file (mode 0600) holding users.
func writeUsers(t *testing.T, users map[string]*local.User) string {
	t.Helper()
	b, err := (&local.File{Users: users}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// edgeSetup is what an edge test tunes before the gateway starts.
type edgeSetup struct {
	users   map[string]*local.User
	policy  local.Policy // zero: local.DefaultPolicy()
	lockout policy.LockoutPolicy
	codes   *totp.Verifier      // nil: a fresh one on the real clock
	extra   []auth.Provider     // asked before the local store
	tune    func(*auth.Gateway) // last changes to the authenticator
	opts    []option            // proxy configuration

	path  string       // the users file, set by startEdge
	store *local.Store // set by startEdge

	mu      sync.Mutex
	secrets []string // must never reach the log
}

// secret registers s as a string that must not appear in the gateway's log.
func (e *edgeSetup) secret(s string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, s)
	return s
}

// startEdge starts a gateway whose authenticator is an auth.Gateway over
// the local users of e, mapping everyone to the demo backend's account by
// default.
func startEdge(t *testing.T, e *edgeSetup) *gateway {
	t.Helper()
	pol := e.policy
	if pol == (local.Policy{}) {
		pol = local.DefaultPolicy()
	}
	cfg := local.Config{Path: writeUsers(t, e.users), Policy: pol, MaxConcurrent: 2, Params: edgeParams}
	st, err := local.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	e.path, e.store = cfg.Path, st
	codes := e.codes
	if codes == nil {
		codes = &totp.Verifier{}
	}
	g := &auth.Gateway{
		Providers:       append(append([]auth.Provider{}, e.extra...), st),
		Profiles:        st,
		Codes:           codes,
		Throttle:        auth.LockoutThrottle(policy.NewLockout(e.lockout)),
		Burn:            func(ctx context.Context) { _ = st.Burn(ctx) },
		WarnBefore:      pol.WarnBefore,
		BackendUser:     user,
		BackendPassword: password,
	}
	if e.tune != nil {
		e.tune(g)
	}
	gw := startGatewayWith(t, []proxy.Option{proxy.WithAuthenticator(g)}, e.opts...)
	t.Cleanup(func() {
		logs := gw.logs.String()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.secrets {
			if containsWord(logs, s) {
				t.Errorf("a secret (%d bytes, starting %.3q) reached the gateway's log", len(s), s)
			}
		}
	})
	return gw
}

// containsWord says whether s appears in logs not as part of a longer run
// of letters and digits (a 6-digit code may be part of a longer number).
func containsWord(logs, s string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(s) + `($|[^A-Za-z0-9])`)
	return re.MatchString(logs)
}

// backendDials counts the gateway's connections to the backend.
func backendDials(g *gateway) int { return strings.Count(g.logs.String(), "backend connected") }

// edgeLogin sends USER and PASS on a new implicit-TLS session and checks
// the reply code to PASS.
func edgeLogin(t *testing.T, g *gateway, name, pass string, code int) (*rawClient, wire.Reply) {
	t.Helper()
	c := dialRaw(t, g.addr("implicit"), true)
	c.do("USER "+name, wire.StatusUserOK)
	return c, c.do("PASS "+pass, code)
}

// TestEdgeLocalPassword: a local user with the right password is logged in
// and mapped to the backend account, which the 230 text does not name;
// a wrong password and an unknown user get the same 530 and never touch the
// backend; the login line names the factors and the backend account.
func TestEdgeLocalPassword(t *testing.T) {
	e := &edgeSetup{}
	pw := e.secret("Alice-edge-Pa55!")
	e.users = map[string]*local.User{"alice": {Password: hashPW(t, pw), Groups: []string{"partners"}}}
	g := startEdge(t, e)

	_, wrong := edgeLogin(t, g, "alice", e.secret("Alice-wrong-Pa55!"), wire.StatusNotLoggedIn)
	_, unknown := edgeLogin(t, g, "mallory", e.secret("Mallory-Pa55!"), wire.StatusNotLoggedIn)
	if wrong.Text() != unknown.Text() {
		t.Errorf("wrong password %q and unknown user %q get different replies", wrong.Text(), unknown.Text())
	}
	if n := backendDials(g); n != 0 {
		t.Fatalf("refused logins dialled the backend %d times", n)
	}

	c, ok := edgeLogin(t, g, "alice", pw, wire.StatusLoggedIn)
	if strings.Contains(ok.Text(), user) || !strings.Contains(ok.Text(), "alice") {
		t.Errorf("230 text %q: want the edge name, never the backend account %q", ok.Text(), user)
	}
	c.do("PWD", wire.StatusPathCreated)
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	body := randomBytes(t, 64<<10)
	if err := os.WriteFile(filepath.Join(g.root, "in.bin"), body, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := retrSmall(t, c, "in.bin"); sum(got) != sum(body) {
		t.Errorf("download through the mapped account: %d bytes, hash differs", len(got))
	}

	// An upload with a client library, logged in as the edge user.
	fc, err := ftp.Dial(g.addr("implicit"), ftp.DialWithTLS(clientTLS()), ftp.DialWithTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Quit()
	if err := fc.Login("alice", pw); err != nil {
		t.Fatal(err)
	}
	up := randomBytes(t, 100<<10)
	if err := fc.Stor("up.bin", bytes.NewReader(up)); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(g.root, "up.bin")); sum(got) != sum(up) {
		t.Error("upload: the backend's file differs")
	}
	if got := retrAll(t, fc, "up.bin", 0); sum(got) != sum(up) {
		t.Error("download: hash differs")
	}

	lines := logLines(t, g, "login succeeded")
	if len(lines) == 0 {
		t.Fatal("no login line")
	}
	logs := g.logs.String()
	if !strings.Contains(logs, `"factors":["password"]`) || !strings.Contains(logs, `"backend_user":"`+user+`"`) {
		t.Errorf("the login line lacks factors or backend_user:\n%s", logs)
	}
	if strings.Contains(logs, password) {
		t.Error("the backend password reached the log")
	}
}

// TestEdgeTOTP: a TOTP code appended to the password logs in once; the same
// code again is a replay (530), a wrong code is 530; the password alone gets
// 332 and the code follows with ACCT; ACCT without a pending login is 503.
func TestEdgeTOTP(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	key, err := totp.NewKey("ftpsgate-e2e", "tina")
	if err != nil {
		t.Fatal(err)
	}
	e := &edgeSetup{codes: &totp.Verifier{Now: clock}}
	pw := e.secret("Tina-edge-Pa55!")
	e.users = map[string]*local.User{"tina": {Password: hashPW(t, pw), Factors: []string{"password", "totp"}, TOTPSecret: key.Secret}}
	g := startEdge(t, e)
	code := func() string {
		t.Helper()
		c, err := totp.Code(key.Secret, clock())
		if err != nil {
			t.Fatal(err)
		}
		return e.secret(c)
	}

	first := code()
	c, _ := edgeLogin(t, g, "tina", pw+first, wire.StatusLoggedIn)
	c.do("PWD", wire.StatusPathCreated)
	c.do("QUIT", wire.StatusClosing)

	_, replay := edgeLogin(t, g, "tina", pw+first, wire.StatusNotLoggedIn)
	wrongCode := wrongTOTP(t, key.Secret, clock())
	_, wrong := edgeLogin(t, g, "tina", pw+wrongCode, wire.StatusNotLoggedIn)
	_, badPW := edgeLogin(t, g, "tina", "Tina-wrong-Pa55!"+code(), wire.StatusNotLoggedIn)
	if replay.Text() != wrong.Text() || wrong.Text() != badPW.Text() {
		t.Errorf("replayed %q, wrong code %q and wrong password %q differ", replay.Text(), wrong.Text(), badPW.Text())
	}
	if n := backendDials(g); n != 1 {
		t.Errorf("backend dialled %d times, want 1 (the accepted login)", n)
	}
	if !hasLogLine(g.logs.String(), "login failed", "wrong or replayed totp code") {
		t.Error("no log line gives the reason of the refused code")
	}

	// The password alone: 332, then ACCT with a code of a later step.
	d := dialRaw(t, g.addr("implicit"), true)
	d.do("USER tina", wire.StatusUserOK)
	before := backendDials(g)
	d.do("PASS "+pw, wire.StatusNeedAccount)
	if backendDials(g) != before {
		t.Error("the backend was dialled before the code was checked")
	}
	advance(2 * totp.Period)
	d.do("ACCT "+code(), wire.StatusLoggedIn)
	d.do("PWD", wire.StatusPathCreated)

	// ACCT without a pending login, and after a refused one.
	f := dialRaw(t, g.addr("implicit"), true)
	f.do("ACCT 123456", wire.StatusBadSequence)
	f.do("USER tina", wire.StatusUserOK)
	f.do("ACCT 123456", wire.StatusBadSequence)
	if n := strings.Count(g.logs.String(), "login succeeded"); n != 2 {
		t.Errorf("%d logins succeeded, want 2", n)
	}
}

// wrongTOTP is a well-formed code that is none of the codes accepted at now.
func wrongTOTP(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	valid := map[string]bool{}
	for d := -2; d <= 2; d++ {
		c, err := totp.Code(secret, now.Add(time.Duration(d)*totp.Period))
		if err != nil {
			t.Fatal(err)
		}
		valid[c] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code")
	return ""
}

// TestEdgePasswordExpiry: an expired password is a 530 saying so; one that
// expires within warn_before logs in with a warning in the 230 text.
func TestEdgePasswordExpiry(t *testing.T) {
	pol := local.DefaultPolicy()
	pol.MaxAge, pol.WarnBefore = 90*24*time.Hour, 14*24*time.Hour
	e := &edgeSetup{policy: pol}
	oldPW, soonPW, freshPW := e.secret("Old-edge-Pa55!"), e.secret("Soon-edge-Pa55!"), e.secret("Fresh-edge-Pa55!")
	now := time.Now()
	e.users = map[string]*local.User{
		"old":   {Password: hashPW(t, oldPW), PasswordChanged: now.Add(-100 * 24 * time.Hour)},
		"soon":  {Password: hashPW(t, soonPW), PasswordChanged: now.Add(-85 * 24 * time.Hour)},
		"fresh": {Password: hashPW(t, freshPW), PasswordChanged: now.Add(-time.Hour)},
	}
	g := startEdge(t, e)

	_, rep := edgeLogin(t, g, "old", oldPW, wire.StatusNotLoggedIn)
	if !strings.Contains(strings.ToLower(rep.Text()), "expired") {
		t.Errorf("expired password: %q does not say so", rep.Text())
	}
	// A wrong password for the expired account is the usual refusal: the
	// expiry is told only to who knows the password.
	_, rep = edgeLogin(t, g, "old", "Old-wrong-Pa55!", wire.StatusNotLoggedIn)
	if strings.Contains(strings.ToLower(rep.Text()), "expired") {
		t.Errorf("a wrong password learns that the password expired: %q", rep.Text())
	}
	_, rep = edgeLogin(t, g, "soon", soonPW, wire.StatusLoggedIn)
	if !strings.Contains(rep.Text(), "expires in 5 day") {
		t.Errorf("230 within warn_before: %q has no warning", rep.Text())
	}
	_, rep = edgeLogin(t, g, "fresh", freshPW, wire.StatusLoggedIn)
	if strings.Contains(rep.Text(), "expire") {
		t.Errorf("230 for a fresh password warns: %q", rep.Text())
	}
	if n := backendDials(g); n != 2 {
		t.Errorf("backend dialled %d times, want 2 (the accepted logins)", n)
	}
}

// TestEdgeDisabledUser: a disabled user with the right password gets the
// same 530 as a wrong password, without touching the backend.
func TestEdgeDisabledUser(t *testing.T) {
	e := &edgeSetup{}
	pw := e.secret("Dora-edge-Pa55!")
	e.users = map[string]*local.User{"dora": {Password: hashPW(t, pw), Disabled: true}}
	g := startEdge(t, e)
	_, off := edgeLogin(t, g, "dora", pw, wire.StatusNotLoggedIn)
	_, wrong := edgeLogin(t, g, "dora", "Dora-wrong-Pa55!", wire.StatusNotLoggedIn)
	if off.Text() != wrong.Text() {
		t.Errorf("disabled %q and wrong password %q differ", off.Text(), wrong.Text())
	}
	if !hasLogLine(g.logs.String(), "login failed", "account disabled") {
		t.Error("the log does not say the account is disabled")
	}
	if n := backendDials(g); n != 0 {
		t.Errorf("a disabled user dialled the backend %d times", n)
	}
}

// TestEdgeUsersReload: users added, disabled or given a new password with
// local.Edit (what "ftpsgate users" does) take effect at the next login
// once the store reloads (SIGHUP or the watcher), without a restart.
func TestEdgeUsersReload(t *testing.T) {
	e := &edgeSetup{}
	pw, newPW, nina := e.secret("Alice-edge-Pa55!"), e.secret("Alice-new-Pa55!"), e.secret("Nina-edge-Pa55!")
	e.users = map[string]*local.User{"alice": {Password: hashPW(t, pw)}}
	g := startEdge(t, e)
	edgeLogin(t, g, "nina", nina, wire.StatusNotLoggedIn)

	edit := func(fn func(*local.File)) {
		t.Helper()
		if err := local.Edit(e.path, func(f *local.File) error { fn(f); return nil }); err != nil {
			t.Fatal(err)
		}
		if err := e.store.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(f *local.File) {
		f.Users["nina"] = &local.User{Password: hashPW(t, nina)}
		f.Users["alice"].Password = hashPW(t, newPW)
	})
	edgeLogin(t, g, "nina", nina, wire.StatusLoggedIn)
	edgeLogin(t, g, "alice", pw, wire.StatusNotLoggedIn)
	edgeLogin(t, g, "alice", newPW, wire.StatusLoggedIn)
	edit(func(f *local.File) { f.Users["nina"].Disabled = true })
	edgeLogin(t, g, "nina", nina, wire.StatusNotLoggedIn)
}
