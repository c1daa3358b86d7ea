package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/totp"
)

// usersTest makes password hashing cheap and the clock fixed.
func usersTest(t *testing.T) (path string, now *time.Time) {
	t.Helper()
	oldP, oldNow := usersHashParams, usersNow
	usersHashParams = local.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	clock := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	usersNow = func() time.Time { return clock }
	t.Cleanup(func() { usersHashParams, usersNow = oldP, oldNow })
	return filepath.Join(t.TempDir(), "users.yaml"), &clock
}

func runUsers(t *testing.T, stdin string, args ...string) (code int, out, errOut string) {
	t.Helper()
	var o, e bytes.Buffer
	code = cmdUsers(args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func openUsers(t *testing.T, path string, mod func(*local.Config)) *local.Store {
	t.Helper()
	cfg := local.DefaultConfig(path)
	cfg.Params = usersHashParams
	if mod != nil {
		mod(&cfg)
	}
	s, err := local.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsersAddPasswdList(t *testing.T) {
	path, clock := usersTest(t)
	ctx := context.Background()
	code, out, errOut := runUsers(t, "Tr0ub4dor&3xy\n", "add", "--file", path, "--groups", "partners,uploaders", "--password-stdin",
		"--backend-user", "legacy", "--backend-password-env", "FTPSGATE_TEST_PW", "alice")
	if code != 0 || !strings.Contains(out, "added alice") {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", fi, err)
	}
	t.Setenv("FTPSGATE_TEST_PW", "backend")
	s := openUsers(t, path, nil)
	id, err := s.Verify(ctx, "alice", "Tr0ub4dor&3xy")
	if err != nil || len(id.Groups) != 2 {
		t.Fatalf("Verify: %+v %v", id, err)
	}
	if p, _ := s.Profile("alice"); p.BackendUser != "legacy" || p.BackendPassword != "backend" {
		t.Fatalf("profile %+v", p)
	}

	// A second add of the same name fails; the policy refuses weak passwords.
	if code, _, e := runUsers(t, "Tr0ub4dor&3xy\n", "add", "--file", path, "--password-stdin", "alice"); code != 1 || !strings.Contains(e, "exists") {
		t.Fatalf("second add: %d %s", code, e)
	}
	for pw, want := range map[string]string{
		"short1A!":           "shorter than 12",
		"alllowercaseletter": "classes",
		"xxBob-12345678":     "user name",
	} {
		if code, _, e := runUsers(t, pw+"\n", "add", "--file", path, "--password-stdin", "bob"); code != 1 || !strings.Contains(e, want) || strings.Contains(e, pw) {
			t.Errorf("add with %q: %d %s", pw, code, e)
		}
	}
	// --min-length lowers the bar when asked.
	if code, _, e := runUsers(t, "Abc123!\n", "add", "--file", path, "--password-stdin", "--min-length", "6", "bob"); code != 0 {
		t.Fatalf("add bob: %s", e)
	}

	// passwd: history is kept and reuse refused.
	*clock = clock.Add(24 * time.Hour)
	pws := []string{"Second-pass-2", "Third-pass-33", "Fourth-pass-4"}
	for _, pw := range pws {
		if code, _, e := runUsers(t, pw+"\n", "passwd", "--file", path, "--password-stdin", "--history", "2", "alice"); code != 0 {
			t.Fatalf("passwd %s: %s", pw, e)
		}
	}
	for _, pw := range []string{"Fourth-pass-4", "Third-pass-33", "Second-pass-2"} {
		if code, _, e := runUsers(t, pw+"\n", "passwd", "--file", path, "--password-stdin", "--history", "2", "alice"); code != 1 || !strings.Contains(e, "last 2") {
			t.Errorf("reuse of %s: %d %s", pw, code, e)
		}
	}
	// The first password left the history of 2.
	if code, _, e := runUsers(t, "Tr0ub4dor&3xy\n", "passwd", "--file", path, "--password-stdin", "--history", "2", "alice"); code != 0 {
		t.Errorf("the oldest password is refused: %s", e)
	}
	f, err := local.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := f.Users["alice"]; len(a.PasswordHistory) != 2 || !a.PasswordChanged.Equal(*clock) {
		t.Fatalf("alice %d history entries, changed %v", len(a.PasswordHistory), a.PasswordChanged)
	}
	if code, _, e := runUsers(t, "Whatever-pass-1\n", "passwd", "--file", path, "--password-stdin", "carol"); code != 1 || !strings.Contains(e, `no user "carol"`) {
		t.Fatalf("passwd carol: %d %s", code, e)
	}

	// disable, enable.
	if code, out, _ := runUsers(t, "", "disable", "--file", path, "alice"); code != 0 || !strings.Contains(out, "disabled") {
		t.Fatal(out)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, "alice", "Tr0ub4dor&3xy"); !errors.Is(err, auth.ErrDisabled) {
		t.Fatalf("disabled alice: %v", err)
	}
	if code, _, e := runUsers(t, "", "enable", "--file", path, "alice"); code != 0 {
		t.Fatal(e)
	}

	// list: names, groups, factors, dates; never a hash or secret.
	if code, _, e := runUsers(t, "", "totp", "--file", path, "alice"); code != 0 {
		t.Fatal(e)
	}
	*clock = clock.Add(90*24*time.Hour - time.Hour) // alice's expires in an hour, bob's a day ago
	code, out, errOut = runUsers(t, "", "list", "--file", path, "--max-age", "2160h")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{"NAME", "alice", "partners,uploaders", "password,totp", "2026-11-02 (89d ago)", "2027-01-31", "enrolled", "legacy (password mapped)", "bob", "EXPIRED"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	f, _ = local.ReadFile(path)
	for _, secret := range []string{f.Users["alice"].Password, f.Users["alice"].TOTPSecret, "$argon2id"} {
		if strings.Contains(out, secret) {
			t.Fatalf("list shows a secret:\n%s", out)
		}
	}
}

func TestUsersTOTP(t *testing.T) {
	path, _ := usersTest(t)
	if code, _, e := runUsers(t, "Tr0ub4dor&3xy\n", "add", "--file", path, "--password-stdin", "alice"); code != 0 {
		t.Fatal(e)
	}
	code, out, errOut := runUsers(t, "", "totp", "--file", path, "--issuer", "Example Corp", "alice")
	if code != 0 {
		t.Fatal(errOut)
	}
	i := strings.Index(out, "otpauth://")
	if i < 0 || !strings.Contains(out, "factors now: password, totp") || !strings.ContainsAny(out, "█▀▄") {
		t.Fatalf("totp output:\n%s", out)
	}
	u, err := url.Parse(strings.TrimSpace(out[i:]))
	if err != nil || u.Query().Get("issuer") != "Example Corp" {
		t.Fatalf("URI %v %v", u, err)
	}
	f, _ := local.ReadFile(path)
	a := f.Users["alice"]
	if a.TOTPSecret != u.Query().Get("secret") {
		t.Fatal("the stored secret is not the URI's")
	}
	// The stored secret verifies codes.
	now := time.Now()
	c, _ := totp.Code(a.TOTPSecret, now)
	if err := (&totp.Verifier{Now: func() time.Time { return now }}).Verify("alice", a.TOTPSecret, c); err != nil {
		t.Fatal(err)
	}
	// Enrolling again needs --force; --remove removes secret and factor.
	if code, _, e := runUsers(t, "", "totp", "--file", path, "alice"); code != 1 || !strings.Contains(e, "--force") {
		t.Fatalf("%d %s", code, e)
	}
	if code, out, e := runUsers(t, "", "totp", "--file", path, "--remove", "alice"); code != 0 || !strings.Contains(out, "factors now: password") {
		t.Fatalf("%d %s %s", code, out, e)
	}
	f, _ = local.ReadFile(path)
	if a := f.Users["alice"]; a.TOTPSecret != "" || len(a.Factors) != 1 {
		t.Fatalf("after --remove: %+v", a)
	}
	// A user the file does not hold needs --profile; then it is a profile only.
	if code, _, e := runUsers(t, "", "totp", "--file", path, "ldapbob"); code != 1 || !strings.Contains(e, "--profile") {
		t.Fatalf("%d %s", code, e)
	}
	if code, _, e := runUsers(t, "", "totp", "--file", path, "--profile", "ldapbob"); code != 0 {
		t.Fatal(e)
	}
	s := openUsers(t, path, nil)
	if _, err := s.Verify(context.Background(), "ldapbob", "x"); !errors.Is(err, auth.ErrUnknownUser) {
		t.Fatalf("profile-only ldapbob: %v", err)
	}
	if p, ok := s.Profile("ldapbob"); !ok || p.TOTPSecret == "" {
		t.Fatalf("ldapbob's profile %+v", p)
	}
	// Disabling a profile stops the user: Verify says disabled, no profile.
	if code, out, e := runUsers(t, "", "disable", "--file", path, "ldapbob"); code != 0 || !strings.Contains(out, "profile only") {
		t.Fatalf("%d %s %s", code, out, e)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(context.Background(), "ldapbob", "x"); !errors.Is(err, auth.ErrDisabled) {
		t.Fatalf("disabled profile ldapbob: %v", err)
	}
	if _, ok := s.Profile("ldapbob"); ok || !s.Disabled("ldapbob") {
		t.Fatal("a disabled user has a profile")
	}
}

func TestUsersUsage(t *testing.T) {
	path, _ := usersTest(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: ftpsgate users"},
		{[]string{"--help"}, 0, "Usage: ftpsgate users"},
		{[]string{"add", "--help"}, 0, "Usage: ftpsgate users add"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"list"}, 2, "--file FILE is required"},
		{[]string{"add", "--file", path}, 2, "give one user name"},
		{[]string{"list", "--file", path, "extra"}, 2, "unexpected arguments"},
		{[]string{"list", "--file", path, "--min-classes", "7"}, 2, "min_classes"},
		{[]string{"list", "--file", path}, 1, "no such file"},
		{[]string{"add", "--file", path, "alice"}, 1, "not a terminal"}, // stdin is not a terminal in tests
		{[]string{"add", "--file", path, "al ice", "--no-password"}, 1, "space"},
	} {
		code, out, errOut := runUsers(t, "", tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("users %v = %d, %s%s; want %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	// A group-writable file is refused, saying why.
	if err := os.WriteFile(path, []byte("users: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o664); err != nil {
		t.Fatal(err)
	}
	if code, _, e := runUsers(t, "", "list", "--file", path); code != 1 || !strings.Contains(e, "group- or world-writable") {
		t.Fatalf("%d %s", code, e)
	}
	var out bytes.Buffer
	if run([]string{"help"}, &out, &out); !strings.Contains(out.String(), "ftpsgate users add|passwd") {
		t.Fatalf("usage lacks users:\n%s", out.String())
	}
	// main's switch dispatches to users.
	out.Reset()
	if code := run([]string{"users", "list", "--file", path}, &out, &out); code != 1 || !strings.Contains(out.String(), "ftpsgate users list:") {
		t.Fatalf("run users = %d %s", code, out.String())
	}
}

// add --no-password makes a certificate-only profile with pins.
func TestUsersAddProfile(t *testing.T) {
	path, _ := usersTest(t)
	pin := local.FormatPin([32]byte{7})
	if code, _, e := runUsers(t, "", "add", "--file", path, "--no-password", "--factors", "client_cert", "--pins", pin, "svc"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runUsers(t, "", "add", "--file", path, "--no-password", "--factors", "sms", "svc2"); code != 1 || !strings.Contains(e, "users.svc2.factors") {
		t.Fatalf("%d %s", code, e)
	}
	s := openUsers(t, path, nil)
	if p, ok := s.Profile("svc"); !ok || len(p.Pins) != 1 || p.Pins[0] != ([32]byte{7}) || p.Factors[0] != auth.FactorClientCert {
		t.Fatalf("svc %+v", p)
	}
}
