package ldap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/internal/testslapd"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// The directory the tests load into a real slapd.
const (
	readerDN = "cn=reader," + testslapd.Suffix
	readerPW = "reader-secret"
	alicePW  = "alice-secret-1"
	bobPW    = "bob-secret-2"
	adminPW  = "admin-secret-3"
	dupPW    = "dup-secret-4"
)

func directory() string {
	person := func(ou, uid, pw string) string {
		return "dn: uid=" + uid + "," + ou + "\nobjectClass: inetOrgPerson\nuid: " + uid + "\ncn: " + uid +
			"\nsn: " + uid + "\nuserPassword: " + testslapd.SSHA(pw) + "\n\n"
	}
	return "dn: " + readerDN + "\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\nuserPassword: " +
		testslapd.SSHA(readerPW) + "\n\n" +
		"dn: ou=other," + testslapd.Suffix + "\nobjectClass: organizationalUnit\nou: other\n\n" +
		person(testslapd.PeopleDN, "alice", alicePW) +
		person(testslapd.PeopleDN, "bob", bobPW) +
		person(testslapd.PeopleDN, "admin", adminPW) +
		person(testslapd.PeopleDN, "dup", dupPW) +
		person("ou=other,"+testslapd.Suffix, "dup", dupPW) +
		"dn: cn=staff," + testslapd.GroupsDN + "\nobjectClass: groupOfNames\ncn: staff\nmember: uid=alice," + testslapd.PeopleDN +
		"\nmember: uid=bob," + testslapd.PeopleDN + "\n\n" +
		"dn: cn=ops," + testslapd.GroupsDN + "\nobjectClass: groupOfNames\ncn: ops\nmember: uid=alice," + testslapd.PeopleDN + "\n"
}

// startDirectory runs slapd with the test directory.
func startDirectory(t *testing.T) *testslapd.Server {
	t.Helper()
	s := testslapd.Start(t)
	s.AddLDIF(t, directory())
	return s
}

// searchConfig is search mode over StartTLS with the service account.
func searchConfig(t *testing.T, s *testslapd.Server) Config {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "bindpw")
	if err := os.WriteFile(pw, []byte(readerPW+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Config{URLs: []string{s.URL}, StartTLS: true, CAFile: s.CAFile,
		BaseDN: testslapd.Suffix, BindDN: readerDN, BindPasswordFile: pw,
		Timeout: 3 * time.Second, DialTimeout: 3 * time.Second}
}

// bindConfig is bind mode over ldaps://.
func bindConfig(s *testslapd.Server) Config {
	return Config{URLs: []string{s.LDAPSURL}, CAFile: s.CAFile,
		BindDNTemplate: "uid=%s," + testslapd.PeopleDN,
		Timeout:        3 * time.Second, DialTimeout: 3 * time.Second}
}

func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// verify calls p.Verify and checks that the password is in no error.
func verify(t *testing.T, p *Provider, user, pw string) (auth.Identity, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id, err := p.Verify(ctx, user, pw)
	if err != nil && pw != "" && strings.Contains(err.Error(), pw) {
		t.Errorf("the password is in the error: %v", err)
	}
	if err != nil && id.User != "" {
		t.Errorf("an identity with an error: %+v, %v", id, err)
	}
	return id, err
}

func wantIdentity(t *testing.T, p *Provider, user, pw, canonical string, groups ...string) {
	t.Helper()
	id, err := verify(t, p, user, pw)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	if id.User != canonical || !slices.Equal(id.Groups, groups) || id.Provider != "ldap" || id.Factor != auth.FactorPassword {
		t.Errorf("%s: got %+v, want user %q groups %q", user, id, canonical, groups)
	}
}

// wantErr checks that Verify fails with one of want.
func wantErr(t *testing.T, p *Provider, user, pw string, want ...error) error {
	t.Helper()
	_, err := verify(t, p, user, pw)
	for _, w := range want {
		if errors.Is(err, w) {
			return err
		}
	}
	t.Errorf("%q: got %v, want %v", user, err, want)
	return err
}

func TestSlapdBindTemplate(t *testing.T) {
	s := startDirectory(t)
	p := newProvider(t, bindConfig(s))
	wantIdentity(t, p, "alice", alicePW, "alice", "ops", "staff")
	wantIdentity(t, p, "ALICE", alicePW, "alice", "ops", "staff") // the directory's spelling
	wantIdentity(t, p, "bob", bobPW, "bob", "staff")
	wantIdentity(t, p, "admin", adminPW, "admin")
	wantErr(t, p, "alice", bobPW, auth.ErrDenied)
	wantErr(t, p, "alice", "", auth.ErrDenied)
	// Bind mode cannot tell an unknown user from a wrong password.
	wantErr(t, p, "nobody", alicePW, auth.ErrDenied)
}

func TestSlapdSearchThenBind(t *testing.T) {
	s := startDirectory(t)
	p := newProvider(t, searchConfig(t, s))
	wantIdentity(t, p, "alice", alicePW, "alice", "ops", "staff")
	wantIdentity(t, p, "Bob", bobPW, "bob", "staff")
	wantErr(t, p, "alice", bobPW, auth.ErrDenied)
	wantErr(t, p, "alice", "", auth.ErrDenied)
	wantErr(t, p, "nobody", alicePW, auth.ErrUnknownUser)
	// Two entries match: denied even with the right password, and an
	// error log line says why.
	var buf testproc.SyncBuffer
	p.log = zerolog.New(&buf)
	wantErr(t, p, "dup", dupPW, auth.ErrDenied)
	if line := buf.String(); !strings.Contains(line, `"level":"error"`) || !strings.Contains(line, "more than one entry") ||
		strings.Contains(line, dupPW) {
		t.Errorf("log: %s", line)
	}
	// The searches reused pooled service connections.
	if len(p.pool) == 0 {
		t.Error("no idle service connection in the pool")
	}
}

func TestSlapdServiceBindRefused(t *testing.T) {
	s := startDirectory(t)
	cfg := searchConfig(t, s)
	cfg.BindPasswordFile, cfg.BindPassword = "", "wrong"
	p := newProvider(t, cfg)
	err := wantErr(t, p, "alice", alicePW, auth.ErrUnavailable)
	if err != nil && !strings.Contains(err.Error(), "service bind") {
		t.Errorf("the error does not say the service bind failed: %v", err)
	}
}

func TestSlapdGroupSearch(t *testing.T) {
	s := startDirectory(t)
	// Search mode: the group search runs as the service account; memberOf
	// is off, so the groups come from the search alone.
	cfg := searchConfig(t, s)
	cfg.GroupAttribute, cfg.GroupBaseDN = "-", testslapd.GroupsDN
	wantIdentity(t, newProvider(t, cfg), "alice", alicePW, "alice", "ops", "staff")
	cfg.GroupBaseDN = ""
	wantIdentity(t, newProvider(t, cfg), "alice", alicePW, "alice")
	// Bind mode without a service account: the group search runs as the
	// user.
	bcfg := bindConfig(s)
	bcfg.GroupAttribute, bcfg.GroupBaseDN = "-", testslapd.GroupsDN
	wantIdentity(t, newProvider(t, bcfg), "bob", bobPW, "bob", "staff")
	wantIdentity(t, newProvider(t, bcfg), "ALICE", alicePW, "alice", "ops", "staff")
	// A group filter that matches nothing: no groups, still a login.
	bcfg.GroupFilter = "(&(objectClass=posixGroup)(member=%s))"
	wantIdentity(t, newProvider(t, bcfg), "bob", bobPW, "bob")
}

func TestSlapdTLS(t *testing.T) {
	s := startDirectory(t)
	other, err := testpki.WriteServer(t.TempDir(), "some other CA")
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{"ldaps": bindConfig(s), "starttls": searchConfig(t, s)} {
		t.Run(name, func(t *testing.T) {
			wantIdentity(t, newProvider(t, cfg), "bob", bobPW, "bob", "staff")

			wrong := cfg
			wrong.CAFile = other.CAFile
			err := wantErr(t, newProvider(t, wrong), "bob", bobPW, auth.ErrUnavailable)
			if err != nil && !strings.Contains(err.Error(), "certificate signed by unknown authority") {
				t.Errorf("the error does not say why: %v", err)
			}

			wrong = cfg
			wrong.ServerName = "ldap.example.org"
			err = wantErr(t, newProvider(t, wrong), "bob", bobPW, auth.ErrUnavailable)
			if err != nil && !strings.Contains(err.Error(), "ldap.example.org") {
				t.Errorf("the error does not say why: %v", err)
			}

			wrong.InsecureSkipVerify = true
			wrong.CAFile = ""
			wantIdentity(t, newProvider(t, wrong), "bob", bobPW, "bob", "staff")
		})
	}
}

func TestSlapdCleartext(t *testing.T) {
	s := startDirectory(t)
	cfg := searchConfig(t, s)
	cfg.StartTLS = false
	if _, err := New(cfg, zerolog.Nop()); err == nil {
		t.Fatal("ldap:// without StartTLS was taken without allow_cleartext")
	}
	cfg.AllowCleartext = true
	wantIdentity(t, newProvider(t, cfg), "alice", alicePW, "alice", "ops", "staff")
}

// TestSlapdInjection: user names that would widen a filter or change a DN
// match nothing, whichever password comes with them.
func TestSlapdInjection(t *testing.T) {
	s := startDirectory(t)
	names := []string{"*", ")(uid=*", "*)(uid=*", "admin)(|(uid=*", "admin,ou=x", "admin,ou=people", "uid=admin," + testslapd.PeopleDN,
		"a*", "adm*", "admin\\2a", "admin)", "(uid=admin)", "admin+cn=admin", "#admin", " admin", "admin ", "admin\x00"}
	for mode, cfg := range map[string]Config{"bind": bindConfig(s), "search": searchConfig(t, s)} {
		p := newProvider(t, cfg)
		for _, name := range names {
			for _, pw := range []string{adminPW, alicePW, "wrong-pw-zz9"} {
				id, err := verify(t, p, name, pw)
				if err == nil {
					t.Errorf("%s: %q logged in as %+v", mode, name, id)
					continue
				}
				if !errors.Is(err, auth.ErrDenied) && !errors.Is(err, auth.ErrUnknownUser) {
					t.Errorf("%s: %q: %v", mode, name, err)
				}
			}
		}
		wantIdentity(t, p, "admin", adminPW, "admin") // still fine
	}
}

// TestSlapdKilled: the directory dies between logins; the next login is
// ErrUnavailable within the timeouts, not a hang.
func TestSlapdKilled(t *testing.T) {
	s := startDirectory(t)
	for name, cfg := range map[string]Config{"bind": bindConfig(s), "search": searchConfig(t, s)} {
		cfg.Timeout, cfg.DialTimeout = time.Second, time.Second
		p := newProvider(t, cfg)
		wantIdentity(t, p, "bob", bobPW, "bob", "staff")
		defer func(name string, p *Provider) {
			start := time.Now()
			wantErr(t, p, "bob", bobPW, auth.ErrUnavailable)
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("%s: %s to notice the directory is gone", name, d)
			}
		}(name, p)
	}
	s.Kill(t)
}

// TestSlapdFrozen: the directory hangs (SIGSTOP) with connections open in
// the pool: logins are ErrUnavailable within the timeouts; once it answers
// again, so do logins (the stuck connections were discarded).
func TestSlapdFrozen(t *testing.T) {
	s := startDirectory(t)
	var ps []*Provider
	for _, cfg := range []Config{bindConfig(s), searchConfig(t, s)} {
		cfg.Timeout, cfg.DialTimeout = 500*time.Millisecond, 500*time.Millisecond
		p := newProvider(t, cfg)
		wantIdentity(t, p, "bob", bobPW, "bob", "staff")
		ps = append(ps, p)
	}
	s.Freeze(t)
	for _, p := range ps {
		start := time.Now()
		err := wantErr(t, p, "bob", bobPW, auth.ErrUnavailable)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s to give up on a silent directory", d)
		}
		t.Logf("frozen: %v", err)
	}
	s.Thaw(t)
	for _, p := range ps {
		wantIdentity(t, p, "bob", bobPW, "bob", "staff")
	}
}

// TestSlapdNoLeak: logins, pooled connections and Close leave no goroutine
// of the LDAP client behind.
func TestSlapdNoLeak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s := startDirectory(t)
	for _, cfg := range []Config{bindConfig(s), searchConfig(t, s)} {
		p, err := New(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		wantIdentity(t, p, "bob", bobPW, "bob", "staff")
		wantErr(t, p, "bob", "wrong-pw-zz9", auth.ErrDenied)
		wantErr(t, p, "nobody", "wrong-pw-zz9", auth.ErrDenied, auth.ErrUnknownUser)
		_ = p.Close()
	}
	goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/ftpsgate/ftpsgate/internal/testslapd.Start.func1"))
}

// TestSlapdConcurrent: many logins at once share the pool and the
// max_connections slots (a bounded load: 3 x 20 logins).
func TestSlapdConcurrent(t *testing.T) {
	s := startDirectory(t)
	cfg := searchConfig(t, s)
	cfg.PoolSize, cfg.MaxConnections = 2, 4
	p := newProvider(t, cfg)
	var wg sync.WaitGroup
	for i := range 20 {
		for _, c := range []struct {
			user, pw string
			ok       bool
		}{{"alice", alicePW, true}, {"bob", bobPW, true}, {"bob", alicePW, false}} {
			wg.Go(func() {
				id, err := verify(t, p, c.user, c.pw)
				if c.ok && (err != nil || id.User != c.user) || !c.ok && !errors.Is(err, auth.ErrDenied) {
					t.Errorf("%d %s: %+v %v", i, c.user, id, err)
				}
			})
		}
	}
	wg.Wait()
	if n := len(p.pool); n > 2 || len(p.slots) != 0 {
		t.Errorf("%d idle connections (pool_size 2), %d slots held", n, len(p.slots))
	}
}
