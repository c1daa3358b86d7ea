package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// TestReadyz: the admin API's /readyz answers 200 while the backend greets,
// 503 within a few seconds of the backend going down (the probe's result is
// cached for 2 s), 200 again once it is back, and 503 once the gateway
// shuts down; /healthz says alive all along. Neither needs the token.
func TestReadyz(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	beAddr := be.Addr()
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = beAddr })

	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("ready-test-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	api, err := admin.New(admin.Config{Address: apiAddr, TokenFile: token}, g.srv.Defender(), nil, zerolog.Nop(), admin.WithReadiness(g.srv))
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = api.Shutdown(sctx)
	}()

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + apiAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body["status"] + " " + body["reason"]
	}
	waitStatus := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			code, body := get("/readyz")
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz: %d %q, want %d within %s", code, body, want, within)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	waitStatus(http.StatusOK, time.Second)
	be.Close() // the backend goes down
	waitStatus(http.StatusServiceUnavailable, 4*time.Second)
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d while the backend is down, want 200 (alive)", code)
	}
	be2, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: user, Password: password, Address: beAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer be2.Close()
	waitStatus(http.StatusOK, 4*time.Second)

	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := g.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after shutdown: %d %q, want 503", code, body)
	}
}
