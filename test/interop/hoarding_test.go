package interop

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGatewayPreLoginHoarding: the gateway runs with its default limits and
// a descriptor limit of 256 (ulimit -n) in front of vsftpd. One address
// opens 300 control connections and never logs in. The gateway greets at
// most limits.max_prelogin_per_ip (16) of them and answers the rest 421 at
// once, never runs out of descriptors, and a client from another address
// still logs in and lists through it.
func TestGatewayPreLoginHoarding(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)

	srv := startServer(ctx, t, backendSpec{kindVsftpd, tlsNone})
	cfg := newGatewayConfig(t, srv.Addr, tlsNone, "")
	bin := gatewayBinary(t)
	dir := t.TempDir()
	gw := &gateway{Config: cfg, ConfigPath: writeConfig(t, dir, cfg.YAML())}
	gw.proc = startProcess(t, "ftpsgate", filepath.Join(dir, "ftpsgate.log"),
		"/bin/sh", "-c", `ulimit -n 256 && exec "$0" run --config "$1"`, bin, gw.ConfigPath)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	waitForPort(wctx, t, cfg.ExplicitAddr, gw.proc)
	cancel()

	const attempts, maxPreLogin = 300, 16
	var (
		mu            sync.Mutex
		greeted, shut int
		other         []string
		conns         []net.Conn
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7)}, Timeout: 5 * time.Second}
			c, err := d.DialContext(ctx, "tcp", cfg.ExplicitAddr)
			line := ""
			if err == nil {
				line = readLine(c, 5*time.Second)
			} else {
				line = "<dial: " + err.Error() + ">"
			}
			mu.Lock()
			defer mu.Unlock()
			if c != nil {
				conns = append(conns, c) // held open: they never log in
			}
			switch {
			case strings.HasPrefix(line, "220"):
				greeted++
			case strings.HasPrefix(line, "421"):
				shut++
			default:
				other = append(other, line)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d connections from 127.0.0.7: %d greeted, %d refused with 421, %d other", attempts, greeted, shut, len(other))
	if greeted > maxPreLogin {
		t.Errorf("%d pre-login sessions greeted from one address, want at most %d", greeted, maxPreLogin)
	}
	if len(other) > 0 {
		t.Errorf("%d connections got neither 220 nor 421, e.g. %q\n%s", len(other), other[0], gw.diagnostics())
	}

	// Another client still gets in and works, while the hoarder holds on.
	c := gw.client(tlsExplicit, false, srv.User)
	if run := runCurl(ctx, t, append(c.args(), c.url(""))); run.Err != nil {
		t.Errorf("a client from 127.0.0.1 could not list while 127.0.0.7 hoarded sessions\n%s\n%s", run, gw.diagnostics())
	}
	if log := gw.proc.Log(); strings.Contains(log, "accept failed") || strings.Contains(log, "too many open files") {
		t.Errorf("the gateway ran out of descriptors\n%s", gw.diagnostics())
	}
	gw.assertLogOmits(t, srv.User.Password)
}
