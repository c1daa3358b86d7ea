package fleet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHAProxyTransfers: curl and lftp, PASV and EPSV, 64 MiB up and down
// through the balancer only; SHA-256 checked on the backend's disk and on
// the client's side; every replica served sessions and transfers.
func TestHAProxyTransfers(t *testing.T) {
	requireInterop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	f := Start(ctx, t, Options{})
	src, sum := BigFile(t)
	local := t.TempDir()
	check := func(what string, r Run, pasv bool) {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("%s: %v\n%s\n%s", what, r.Err, r, f.Diagnostics())
		}
		p227, p229 := PassivePorts(t, r.Output)
		ports := p229
		if pasv {
			ports = p227
			if len(p229) > 0 {
				t.Errorf("%s: EPSV used with --disable-epsv / prefer-epsv no", what)
			}
		} else if len(p227) > 0 {
			t.Errorf("%s: PASV used where EPSV was asked", what)
		}
		if len(ports) == 0 {
			t.Errorf("%s: no passive reply in the client's output\n%s", what, r)
		}
		for _, p := range ports {
			if f.ReplicaOfPort(p) == nil {
				t.Errorf("%s: passive port %d outside the fleet's %d-%d", what, p, f.PasvLo, f.PasvHi)
			}
		}
	}
	for _, c := range []struct {
		client string
		pasv   bool
	}{{"curl", true}, {"curl", false}, {"lftp", true}, {"lftp", false}} {
		mode := map[bool]string{true: "PASV", false: "EPSV"}[c.pasv]
		name := fmt.Sprintf("%s-%s.bin", c.client, mode)
		got := filepath.Join(local, name)
		if c.client == "curl" {
			check("curl upload "+mode, f.Curl(ctx, t, c.pasv, "-T", src, f.URL(name)), c.pasv)
			if s := SHA256File(t, filepath.Join(f.Backend.Root, name)); s != sum {
				t.Fatalf("curl %s upload: the backend's file has SHA-256 %s, want %s", mode, s, sum)
			}
			check("curl download "+mode, f.Curl(ctx, t, c.pasv, "-o", got, f.URL(name)), c.pasv)
		} else {
			r := f.Lftp(ctx, t, c.pasv, fmt.Sprintf("put '%s' -o %s", src, name), fmt.Sprintf("get %s -o '%s'", name, got))
			check("lftp put+get "+mode, r, c.pasv)
			if s := SHA256File(t, filepath.Join(f.Backend.Root, name)); s != sum {
				t.Fatalf("lftp %s put: the backend's file has SHA-256 %s, want %s", mode, s, sum)
			}
		}
		if s := SHA256File(t, got); s != sum {
			t.Fatalf("%s %s download: SHA-256 %s, want %s", c.client, mode, s, sum)
		}
	}
	// Six sessions (curl's four, lftp's two), leastconn over three idle
	// replicas: each served some. Every transfer line also shows the
	// balancer in front and the real client behind it.
	for _, r := range f.Replicas {
		logins, transfers := r.LogLines("login succeeded"), r.LogLines("transfer")
		t.Logf("gw%d (%s, passive %d-%d): %d logins, %d transfers", r.Index, r.Host, r.PasvLo, r.PasvHi, len(logins), len(transfers))
		if len(logins) == 0 || len(transfers) == 0 {
			t.Errorf("gw%d served no session or transfer: the balancer did not spread sessions\n%s", r.Index, f.Diagnostics())
		}
		for _, l := range logins {
			if c, _ := l["client"].(string); len(c) < 10 || c[:10] != "127.0.0.1:" {
				t.Errorf("gw%d: login from %v, want the real client 127.0.0.1 (PROXY header)", r.Index, l["client"])
			}
		}
	}
}

// TestHAProxyReplicaDown: a killed replica is taken out by the balancer's
// /readyz checks, sessions go on through the others, and it comes back
// after a restart. (The harness's Kill and Start, which the fleet tests
// use.)
func TestHAProxyReplicaDown(t *testing.T) {
	requireInterop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := Start(ctx, t, Options{})
	src := filepath.Join(t.TempDir(), "small.bin")
	if err := os.WriteFile(src, bytes.Repeat([]byte("ftpsgate fleet\n"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	down := f.Replicas[1]
	if err := down.Kill(); err != nil {
		t.Fatal(err)
	}
	f.WaitServer(ctx, t, down.Index, false)
	before := len(down.LogLines("login succeeded"))
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("down-%d.bin", i)
		if r := f.Curl(ctx, t, i%2 == 0, "-T", src, f.URL(name)); r.Err != nil {
			t.Fatalf("upload %d with gw1 down: %v\n%s\n%s", i, r.Err, r, f.Diagnostics())
		}
	}
	if n := len(down.LogLines("login succeeded")); n != before {
		t.Errorf("the killed replica logged %d new logins", n-before)
	}
	down.Start(ctx, t)
	f.WaitServer(ctx, t, down.Index, true)
	for i := 0; i < 6 && len(down.LogLines("login succeeded")) == before; i++ {
		if r := f.Curl(ctx, t, false, "-o", filepath.Join(t.TempDir(), "x"), f.URL("down-0.bin")); r.Err != nil {
			t.Fatalf("download after the restart: %v\n%s", r.Err, r)
		}
	}
	if len(down.LogLines("login succeeded")) == before {
		t.Errorf("the restarted replica got no session in 6\n%s", f.Diagnostics())
	}
}
