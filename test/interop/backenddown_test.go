package interop

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"
)

// TestGatewayBackendDown: backend.address is a closed loopback port. A client
// gets 421 within timeouts.connect (plus slack), and the gateway keeps
// running and still greets new control connections with 220.
func TestGatewayBackendDown(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, time.Minute)

	cfg := newGatewayConfig(t, loopbackAddr(freePort(t)), tlsNone, "")
	cfg.Connect = 3 * time.Second
	gw := startGateway(ctx, t, cfg)

	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	acct := ftpAccount{Name: "nobody-here", Password: "Down-" + hex.EncodeToString(rnd[:])}
	for _, front := range []tlsMode{tlsExplicit, tlsImplicit} {
		c := gw.client(front, false, acct)
		run := runCurl(ctx, t, append(c.args(), c.url("")))
		if run.Err == nil {
			t.Errorf("front %s: curl succeeded with the backend down\n%s", front, run)
		}
		if !strings.Contains(run.Output, "\n< 421") {
			t.Errorf("front %s: no 421 reply with the backend down\n%s\n%s", front, run, gw.diagnostics())
		}
		if limit := cfg.connect() + 5*time.Second; run.Duration > limit {
			t.Errorf("front %s: curl took %v with the backend down, want at most %v (timeouts.connect %v + 5s)",
				front, run.Duration, limit, cfg.connect())
		}
	}

	if gw.proc.Exited() {
		t.Fatalf("the gateway exited (%v) after a client met a dead backend\n%s", gw.proc.Err(), gw.diagnostics())
	}
	c, err := net.DialTimeout("tcp", cfg.ExplicitAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("new control connection after the backend failure: %v\n%s", err, gw.diagnostics())
	}
	defer c.Close()
	if line := readLine(c, 5*time.Second); !strings.HasPrefix(line, "220") {
		t.Errorf("new control connection after the backend failure got %q, want a 220 greeting\n%s", line, gw.diagnostics())
	}
	gw.assertLogOmits(t, acct.Password)
}
