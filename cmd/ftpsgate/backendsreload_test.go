package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
)

// startMarkedBackend starts a demo backend (user "backend") whose root
// holds the file marker-name.
func startMarkedBackend(t *testing.T, ctx context.Context, name string) *demoftpd.Server {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "marker-"+name), []byte(name), 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: "backend", Password: "Backend-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

// reachedBackend returns which marker the session sees ("" none).
func reachedBackend(c *ftp.ServerConn) string {
	for _, n := range []string{"a", "b"} {
		if _, err := c.FileSize("marker-" + n); err == nil {
			return n
		}
	}
	return ""
}

// TestSIGHUPReloadsBackends: the composed gateway with two backends and a
// rule sending "backend" to a; a SIGHUP with a file that routes it to b:
// a new session goes to b, the session opened before still works on a;
// /backends (the server's list) shows both up, a with its state kept. A
// file with a bad pool keeps the last good set, and the reload's event
// names the key.
func TestSIGHUPReloadsBackends(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := startMarkedBackend(t, ctx, "a"), startMarkedBackend(t, ctx, "b")
	conf := func(target, extra string) string {
		return `
listeners: [{name: implicit, address: "127.0.0.1:0", tls: implicit}]
backends:
  - {name: a, address: "` + a.Addr() + `", health: {interval: 200ms, rise: 1, fall: 1}}
  - {name: b, address: "` + b.Addr() + `", health: {interval: 200ms, rise: 1, fall: 1}}
` + extra + `
routing:
  default: a
  rules: [{users: [backend], target: ` + target + `}]
passive: {ports: "` + freeRange(t, 4) + `"}
log: {level: error}
`
	}
	path := writeConfig(t, conf("a", ""))
	d := startComposed(t, ctx, path)
	sink := &reloadEvents{}
	reloadOnHUP(ctx, d.srv, nil, d.reloaders(), zerolog.Nop(), sink)
	login := func() *ftp.ServerConn {
		t.Helper()
		c, err := ftp.Dial(d.srv.Addr("implicit").String(), ftp.DialWithTimeout(10*time.Second),
			ftp.DialWithTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1", ClientSessionCache: tls.NewLRUClientSessionCache(4)}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Quit() })
		if err := c.Login("backend", "Backend-pw"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	hup := func(text string, n int) (ok bool, msg string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e := sink.wait(t, n)
		if e.Err != nil {
			msg = e.Err.Error()
		}
		return e.OK, msg
	}

	old := login()
	if got := reachedBackend(old); got != "a" {
		t.Fatalf("before the reload: reached %q, want a", got)
	}
	aBefore := d.srv.Backends()[0]

	if ok, msg := hup(conf("b", ""), 1); !ok {
		t.Fatalf("reload: %s", msg)
	}
	if got := reachedBackend(login()); got != "b" {
		t.Errorf("a new session reached %q after the reload, want b", got)
	}
	if got := reachedBackend(old); got != "a" {
		t.Errorf("the running session now reaches %q, want a still", got)
	}
	if err := old.Stor("after-reload.txt", strings.NewReader("ok")); err != nil {
		t.Errorf("a transfer on the running session: %v", err)
	}
	list := d.srv.Backends()
	if len(list) != 2 || list[0].State != "up" || list[1].State != "up" || !list[0].Since.Equal(aBefore.Since) {
		t.Errorf("backends after the reload: %+v (a before: %+v)", list, aBefore)
	}

	// A pool naming no backend: the last good set stays, the key is named.
	ok, msg := hup(conf("a", "pools: [{name: p, members: [a, nosuch]}]"), 2)
	if ok || !strings.Contains(msg, "backends: ") || !strings.Contains(msg, "pools[0].members") {
		t.Fatalf("bad reload: ok=%v %q, want a failure naming pools[0].members", ok, msg)
	}
	if got := reachedBackend(login()); got != "b" {
		t.Errorf("after a refused reload a new session reached %q, want b (the last good set)", got)
	}
}
