package main

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/admin"
)

// TestBackendsCommand: the composed gateway's /v1/backends shows the real
// health states (a live backend up, a dead one down with its error, an
// unchecked one unknown), its pools and sessions, and `ftpsgate backends`
// prints them as a table.
func TestBackendsCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := startMarkedBackend(t, ctx, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	sock := "unix:" + filepath.Join(t.TempDir(), "admin.sock")
	text := `
listeners: [{name: implicit, address: "127.0.0.1:0", tls: implicit}]
backends:
  - {name: up, address: "` + live.Addr() + `", health: {interval: 200ms, rise: 1, fall: 1}}
  - {name: dead, address: "` + dead + `", health: {interval: 200ms, rise: 1, fall: 1}}
  - {name: plain, address: "` + live.Addr() + `"}
pools: [{name: shared, members: [up, dead]}]
routing: {default: shared}
passive: {ports: "` + freeRange(t, 2) + `"}
admin: {address: "` + sock + `"}
log: {level: error}
`
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	d, err := compose(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.auth.close()
	if err := d.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = d.srv.Shutdown(sctx)
	}()
	api, err := admin.New(cfg.admin, nil, nil, zerolog.Nop(), admin.WithBackends(backendLister{srv: d.srv, hub: d.hub}))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = api.Shutdown(context.Background()) }()

	code, out, errOut := runCLI("backends", "--admin", sock, "--json")
	if code != 0 {
		t.Fatalf("backends --json: %d %s", code, errOut)
	}
	var list []admin.BackendInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(list) != 3 {
		t.Fatalf("%d backends: %s", len(list), out)
	}
	up, down, plain := list[0], list[1], list[2]
	if up.State != "up" || !up.Checked || up.LastError != "" || up.Since.IsZero() || len(up.Pools) != 1 || up.Pools[0] != "shared" {
		t.Errorf("live backend: %+v", up)
	}
	if down.State != "down" || !strings.Contains(down.LastError, "connection refused") {
		t.Errorf("dead backend: %+v", down)
	}
	if plain.State != "unknown" || plain.Checked || len(plain.Pools) != 0 {
		t.Errorf("unchecked backend: %+v", plain)
	}

	code, out, errOut = runCLI("backends", "--admin", sock)
	if code != 0 {
		t.Fatalf("backends: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.Contains(lines[1], "up") || !strings.Contains(lines[1], "shared") ||
		!strings.Contains(lines[2], "down") || !strings.Contains(lines[2], "connection refused") ||
		!strings.Contains(lines[3], "unknown (not checked)") {
		t.Errorf("table:\n%s", out)
	}
	if code, _, errOut := runCLI("backends"); code != 2 || !strings.Contains(errOut, "no admin API") {
		t.Errorf("without an address: %d %s", code, errOut)
	}
}
