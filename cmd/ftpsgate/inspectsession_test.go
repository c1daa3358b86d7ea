package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
)

// inspectUsersFile writes alice, bob and carol (group finance), each with
// the password "<Name>-Pa55word!".
func inspectUsersFile(t *testing.T) string {
	t.Helper()
	users := map[string]*local.User{}
	for _, name := range []string{"alice", "bob", "carol"} {
		h, err := local.HashPassword(strings.ToUpper(name[:1])+name[1:]+"-Pa55word!", usersHashParams)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = &local.User{Password: h}
	}
	users["carol"].Groups = []string{"finance"}
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

// TestInspectPoliciesSession: a gateway composed as serve does, with
// inspection policies per user and group: alice's own policy blocks an
// upload with card numbers, bob (the default: alert) uploads it, carol's
// group policy blocks it; a SIGHUP that puts bob in alice's policy blocks
// his next upload.
func TestInspectPoliciesSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	beRoot := t.TempDir()
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: beRoot, User: "backend", Password: "Backend-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	head := `
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
    users_file: ` + inspectUsersFile(t) + `
    watch_interval: 0s
  backend:
    user: backend
    password_file: ` + secretFile(t, "Backend-pw") + `
`
	path := writeConfig(t, head+inspectPoliciesYAML)
	d := startComposed(t, ctx, path)
	sink := &reloadEvents{}
	reloadOnHUP(ctx, d.srv, nil, d.reloaders(), zerolog.Nop(), sink)

	upload := func(user, name string) error {
		t.Helper()
		c, err := ftp.Dial(d.srv.Addr("implicit").String(), ftp.DialWithTimeout(10*time.Second),
			ftp.DialWithTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4)}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		if err := c.Login(user, strings.ToUpper(user[:1])+user[1:]+"-Pa55word!"); err != nil {
			t.Fatalf("%s: login: %v", user, err)
		}
		return c.Stor(name, strings.NewReader("4111111111111111 5555555555554444\n"))
	}
	blocked := func(user, name string) {
		t.Helper()
		var te *textproto.Error
		if err := upload(user, name); !errors.As(err, &te) || te.Code != 550 {
			t.Errorf("%s: upload %v, want 550", user, err)
		}
		if _, err := os.Stat(filepath.Join(beRoot, name)); !os.IsNotExist(err) {
			t.Errorf("%s: blocked upload %s left on the backend (%v)", user, name, err)
		}
	}
	passed := func(user, name string) {
		t.Helper()
		if err := upload(user, name); err != nil {
			t.Errorf("%s: upload: %v", user, err)
		}
	}
	blocked("alice", "a1.txt") // her own policy
	passed("bob", "b1.txt")    // the default: alert
	blocked("carol", "c1.txt") // her group's policy

	if err := os.WriteFile(path, []byte(head+strings.Replace(inspectPoliciesYAML, "users: [alice]", "users: [alice, bob]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if e := sink.wait(t, 1); !e.OK {
		t.Fatalf("reload: %v", e.Err)
	}
	blocked("bob", "b2.txt")
}
