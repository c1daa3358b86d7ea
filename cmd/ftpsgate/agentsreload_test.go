package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/tunnel"
)

// TestSIGHUPRevokesAgent: a SIGHUP whose file no longer pins an agent cuts
// its tunnel and it is refused when it reconnects; a file that pins it
// again but moves agents.listen applies the pins (the agent joins again)
// and reports that the address needs a restart; a backend naming a group
// the gateway does not run is refused with its key.
func TestSIGHUPRevokesAgent(t *testing.T) {
	fx := newAgentFixture(t, "reload agents")
	edge, leaf, other := fx.edge, fx.leaf(t, "agent-1"), fx.leaf(t, "agent-2")
	const listen = "127.0.0.1:0" // the hub's port: d.hubAddr
	conf := func(listen, via, pin string) string {
		return fmt.Sprintf(`listeners: [{name: a, address: "127.0.0.1:0", tls: implicit}]
tls: {cert_file: %s, key_file: %s}
backend: {address: "10.0.0.5:21", via: %s}
agents:
  listen: %q
  groups:
    lan: {pins: [%q]}
passive: {ports: "%s"}
log: {level: error}
`, edge.ChainFile, edge.KeyFile, via, listen, pin, freeRange(t, 2))
	}
	path := writeConfig(t, conf(listen, "lan", pinText(leaf)))
	cfg, err := loadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := compose(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.auth.close()
	defer d.hub.Close()
	sink := &reloadEvents{}
	reloadOnHUP(ctx, d.srv, nil, d.reloaders(), zerolog.Nop(), sink)

	fx.runAgent(t, d.hubAddr.String(), leaf)
	waitFor := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for d.hub.Agents("lan") != n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d agents in lan, want %d", what, d.hub.Agents("lan"), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hup := func(text string, n int) (bool, string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		e := sink.wait(t, n)
		if e.Err != nil {
			return e.OK, e.Err.Error()
		}
		return e.OK, ""
	}
	waitFor(1, "at start")
	pin := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
	if bs := (backendLister{srv: d.srv, hub: d.hub}).Backends(); len(bs) != 1 || bs[0].Via != "lan" || len(bs[0].Agents) != 1 ||
		bs[0].Agents[0].Pin != tunnel.ShortPin(pin) || bs[0].Agents[0].Connected.IsZero() {
		t.Fatalf("/v1/backends: %+v, want the agent of lan with its pin", bs)
	} else {
		var buf strings.Builder
		printBackends(&buf, bs, time.Now())
		if !strings.Contains(buf.String(), "agent ") || !strings.Contains(buf.String(), "pin "+tunnel.ShortPin(pin)) {
			t.Errorf("table:\n%s", buf.String())
		}
	}

	// The agent's pin replaced by another: cut, and refused from then on.
	if ok, msg := hup(conf(listen, "lan", pinText(other)), 1); !ok {
		t.Fatalf("reload: %s", msg)
	}
	waitFor(0, "after its pin was removed")
	time.Sleep(300 * time.Millisecond) // several reconnection attempts
	if n := d.hub.Agents("lan"); n != 0 {
		t.Fatalf("the revoked agent is back (%d agents)", n)
	}

	// Pinned again, with a new listen address: the pins apply, the
	// address is reported.
	ok, msg := hup(conf("127.0.0.1:1", "lan", pinText(leaf)), 2)
	if ok || !strings.Contains(msg, "agents.listen changed") || !strings.Contains(msg, "needs a restart") {
		t.Fatalf("listen moved: ok=%v %q, want an error naming agents.listen", ok, msg)
	}
	waitFor(1, "pinned again")

	// A backend naming a group the gateway does not run: refused, keyed.
	ok, msg = hup(conf(listen, "nosuch", pinText(leaf)), 3)
	if ok || !strings.Contains(msg, "backend.via") {
		t.Fatalf("unknown via: ok=%v %q, want an error naming backend.via", ok, msg)
	}
}
