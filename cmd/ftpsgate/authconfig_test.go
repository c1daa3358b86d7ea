package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// authUsersFile writes a users file: "alice" (password "Alice-Pa55word!",
// group partners) and "bob" (password "Bob-Pa55word!", no group).
func authUsersFile(t *testing.T) string {
	t.Helper()
	users := map[string]*local.User{}
	for name, pw := range map[string]string{"alice": "Alice-Pa55word!", "bob": "Bob-Pa55word!"} {
		h, err := local.HashPassword(pw, usersHashParams)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = &local.User{Password: h}
	}
	users["alice"].Groups = []string{"partners"}
	users["alice"].TOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
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

func secretFile(t *testing.T, s string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAuthConfigGateway: an auth section with the local provider and a
// group loads, and newAuthenticator builds the edge authenticator it
// describes: the group's factors and backend account apply to its members,
// the defaults to the others.
func TestAuthConfigGateway(t *testing.T) {
	text := goodConfig + `
auth:
  mode: gateway
  providers: [local]
  local:
    users_file: ` + authUsersFile(t) + `
    watch_interval: 0s
  groups:
    - name: partners
      factors: [password, totp]
      backend_user: partner
      backend_password_file: ` + secretFile(t, "Partner-backend-pw") + `
  backend:
    user: "ext_%s"
    password_file: ` + secretFile(t, "Default-backend-pw") + `
`
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.auth.gateway() || !cfg.proxy.TLS.ClientCertPins {
		t.Fatalf("gateway mode not set up: %+v", cfg.auth)
	}
	if len(cfg.auth.groups) != 1 || cfg.auth.groups[0].BackendPassword != "Partner-backend-pw" {
		t.Errorf("groups = %+v", cfg.auth.groups)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := newAuthenticator(ctx, cfg.auth, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.close()
	if rt.local == nil || rt.local.Users() != 2 {
		t.Fatal("the local store was not opened")
	}
	a := rt.auth
	res, err := a.Authenticate(ctx, auth.Request{User: "bob", Password: "Bob-Pa55word!"})
	if err != nil || res.Backend != (auth.Credentials{User: "ext_bob", Password: "Default-backend-pw"}) {
		t.Errorf("bob: %+v, %v", res.Backend.User, err)
	}
	if _, err := a.Authenticate(ctx, auth.Request{User: "bob", Password: "wrong"}); !errors.Is(err, auth.ErrDenied) {
		t.Errorf("bob, wrong password: %v", err)
	}
	// alice is a partner: password and TOTP, mapped to the group's account.
	if _, err := a.Authenticate(ctx, auth.Request{User: "alice", Password: "Alice-Pa55word!"}); !errors.Is(err, auth.ErrCodeRequired) {
		t.Errorf("alice without a code: %v", err)
	}
	if err := rt.Reload(); err != nil {
		t.Errorf("reload: %v", err)
	}
	if _, err := loadBytes([]byte(text), nil); err != nil {
		t.Errorf("loadBytes: %v", err)
	}
}

// TestValidateAuthProblems: each problem of the auth section makes validate
// fail with a line naming its key.
func TestValidateAuthProblems(t *testing.T) {
	users := authUsersFile(t)
	for _, tc := range []struct {
		name, auth, key string
	}{
		{"unknown provider", "mode: gateway\n  providers: [local, kerberos]\n  local: {users_file: " + users + "}", "auth.providers"},
		{"no provider", "mode: gateway", "auth.providers"},
		{"unknown mode", "mode: edge", "auth.mode"},
		{"unknown factor", "mode: gateway\n  providers: [local]\n  local: {users_file: " + users + "}\n  default_factors: [password, sms]", "auth.default_factors"},
		{"group factor", "mode: gateway\n  providers: [local]\n  local: {users_file: " + users + "}\n  groups: [{name: p, factors: [totp]}]", "auth.groups[0].factors"},
		{"no users file", "mode: gateway\n  providers: [local]", "auth.local.users_file"},
		{"missing users file", "mode: gateway\n  providers: [local]\n  local: {users_file: " + filepath.Join(t.TempDir(), "nope.yaml") + "}", "auth.local.users_file"},
		{"providers in passthrough", "mode: passthrough\n  providers: [local]\n  local: {users_file: " + users + "}", "auth.mode"},
		{"backend password env unset", "mode: gateway\n  providers: [local]\n  local: {users_file: " + users + "}\n  backend: {password_env: EDGE_TEST_UNSET_SECRET}", "auth.backend.password_env"},
		{"group password env unset", "mode: gateway\n  providers: [local]\n  local: {users_file: " + users + "}\n  groups: [{name: p, backend_password_env: EDGE_TEST_UNSET_SECRET}]", "auth.groups[0].backend_password_env"},
		{"ldap without TLS", "mode: gateway\n  providers: [ldap]\n  ldap: {url: [\"ldap://127.0.0.1:389\"], bind_dn_template: \"uid=%s,dc=example\"}", "auth.ldap.url[0]"},
		{"token without keys", "mode: gateway\n  providers: [token]\n  token: {issuer: \"https://sso.example\", audience: ftpsgate}", "auth.token.jwks_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI("validate", "--config", writeConfig(t, goodConfig+"auth:\n  "+tc.auth+"\n"))
			if code == 0 {
				t.Fatalf("validate accepted it: %s", out)
			}
			if !strings.Contains(errOut, tc.key+": ") {
				t.Errorf("no problem names %s:\n%s", tc.key, errOut)
			}
		})
	}
}

// TestValidateAuthWarnings: the auth settings that weaken security are
// printed by validate as warnings naming their keys.
func TestValidateAuthWarnings(t *testing.T) {
	text := goodConfig + `
auth:
  mode: gateway
  providers: [local, ldap, token]
  local: {users_file: ` + authUsersFile(t) + `}
  backend: {forward_password: true}
  ldap:
    url: ["ldap://127.0.0.1:389"]
    allow_cleartext: true
    bind_dn_template: "uid=%s,dc=example"
  token:
    issuer: "http://127.0.0.1:1"
    audience: ftpsgate
    discovery: true
    allow_http: true
`
	code, out, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	for _, key := range []string{"auth.backend.forward_password", "auth.ldap.allow_cleartext", "auth.token.allow_http"} {
		if !strings.Contains(out, "warning: "+key+": ") {
			t.Errorf("validate printed no warning for %s:\n%s", key, out)
		}
	}
}

// TestValidateAuthLDAPExample: the documented LDAP sections (bind mode, and
// search mode with a service account) validate without group_base_dn; the
// group search filter applies only when group_base_dn is set.
func TestValidateAuthLDAPExample(t *testing.T) {
	ca := caFile(t)
	for _, ldapSection := range []string{`
    url: [ldaps://127.0.0.1:636]
    ca_file: ` + ca + `
    bind_dn_template: "uid=%s,ou=people,dc=corp,dc=example"
    group_attribute: memberOf`, `
    url: [ldap://127.0.0.1:389]
    start_tls: true
    ca_file: ` + ca + `
    base_dn: "dc=corp,dc=example"
    bind_dn: "CN=svc-ftpsgate,OU=Service,DC=corp,DC=example"
    bind_password_file: ` + secretFile(t, "Bind-pw") + `
    user_filter: "(&(objectClass=user)(sAMAccountName=%s))"
    user_attribute: sAMAccountName`, `
    url: [ldaps://127.0.0.1:636]
    ca_file: ` + ca + `
    bind_dn_template: "uid=%s,ou=people,dc=corp,dc=example"
    group_base_dn: "ou=groups,dc=corp,dc=example"`,
	} {
		text := goodConfig + "auth:\n  mode: gateway\n  providers: [ldap]\n  ldap:" + ldapSection + "\n"
		if code, out, errOut := runCLI("validate", "--config", writeConfig(t, text)); code != 0 {
			t.Errorf("validate refused a documented LDAP section (%s%s):%s", out, errOut, ldapSection)
		}
	}
}

// freeRange finds n consecutive free ports on 127.0.0.1 above 61000 (the
// e2e tests use 52000-60000).
func freeRange(t *testing.T, n int) string {
	t.Helper()
	for base := 61000; base+n < 65000; base += n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				continue
			}
			ln.Close()
		}
		if ok {
			return fmt.Sprintf("%d-%d", base, base+n-1)
		}
	}
	t.Fatal("no free port range")
	return ""
}

// TestAuthConfigSession: a gateway composed from the YAML as cmdRun does
// (loadFile, newAuthenticator, proxy.New) logs a local user in to the
// backend account the configuration maps it to, and refuses a wrong
// password with 530.
func TestAuthConfigSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: t.TempDir(), User: "backend", Password: "Backend-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	text := `
listeners:
  - name: implicit
    address: 127.0.0.1:0
    tls: implicit
backend:
  address: ` + be.Addr() + `
  tls: none
passive:
  ports: ` + freeRange(t, 4) + `
auth:
  mode: gateway
  providers: [local]
  local:
    users_file: ` + authUsersFile(t) + `
    watch_interval: 0s
  backend:
    user: backend
    password_file: ` + secretFile(t, "Backend-pw") + `
`
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := newAuthenticator(ctx, cfg.auth, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.close()
	var logs strings.Builder
	var mu sync.Mutex
	srv, err := proxy.New(cfg.proxy, zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}))), proxy.WithAuthenticator(rt.auth))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
	}()
	dial := func() *ftp.ServerConn {
		c, err := ftp.Dial(srv.Addr("implicit").String(), ftp.DialWithTimeout(10*time.Second),
			ftp.DialWithTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4)}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial()
	defer c.Quit()
	var te *textproto.Error
	if err := c.Login("bob", "Bob-wrong-Pa55!"); !errors.As(err, &te) || te.Code != 530 {
		t.Fatalf("wrong password: %v", err)
	}
	d := dial()
	defer d.Quit()
	if err := d.Login("bob", "Bob-Pa55word!"); err != nil {
		t.Fatal(err)
	}
	if err := d.Stor("x.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `"user":"bob","backend_user":"backend","factors":["password"]`) {
		t.Errorf("no login line for bob mapped to the backend account:\n%s", out)
	}
	for _, s := range []string{"Bob-Pa55word!", "Bob-wrong-Pa55!", "Backend-pw"} {
		if strings.Contains(out, s) {
			t.Errorf("a secret reached the log: %.3q...", s)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
