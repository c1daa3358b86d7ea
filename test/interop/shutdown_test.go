package interop

import (
	"bufio"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGatewaySIGTERMDuringDownload: SIGTERM about a second into a
// rate-limited 64 MiB download. The gateway must stop accepting at once, let
// the download complete byte for byte, then exit 0 within the grace period.
func TestGatewaySIGTERMDuringDownload(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 3*time.Minute)
	src, sum := sourceFile(t)

	v := startVsftpd(ctx, t, tlsNone)
	v.put(t, src, "big.bin")
	cfg := newGatewayConfig(t, v.Addr, tlsNone, "")
	cfg.ImplicitAddr = ""
	cfg.ShutdownGrace = 30 * time.Second
	gw := startGateway(ctx, t, cfg)

	// 64 MiB at 20 MiB/s: about 3.2 s.
	c := gw.client(tlsExplicit, false, v.User)
	c.Extra = []string{"--limit-rate", "20M"}
	dst := filepath.Join(t.TempDir(), "big.bin")
	start := time.Now()
	wait := c.startDownload(ctx, t, "big.bin", dst)

	// SIGTERM once data flows and about a second has passed.
	var got int64
	for {
		if st, err := os.Stat(dst); err == nil {
			got = st.Size()
		}
		if got > 0 && time.Since(start) >= time.Second {
			break
		}
		if time.Since(start) > 20*time.Second {
			run := wait()
			t.Fatalf("no data arrived within 20 s (%d bytes)\n%s\n%s", got, run, gw.diagnostics())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := gw.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	signalled := time.Now()
	t.Logf("SIGTERM after %v, %d of %d bytes downloaded", signalled.Sub(start).Round(time.Millisecond), got, bigFileSize)
	if got >= bigFileSize {
		t.Errorf("the download had finished before SIGTERM; the test proved nothing")
	}

	// No new connection once the gateway has been told to stop.
	assertRefused(t, cfg.ExplicitAddr, 3*time.Second)

	run := wait()
	if run.Err != nil {
		t.Fatalf("download after SIGTERM: curl: %v\n%s\n%s", run.Err, run, gw.diagnostics())
	}
	assertSameFile(t, "download across SIGTERM", dst, sum, bigFileSize)
	t.Logf("download done %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))

	code, ok := gw.proc.WaitExit(cfg.shutdownGrace() + 5*time.Second - time.Since(signalled))
	if !ok {
		t.Fatalf("the gateway still runs %v after SIGTERM (grace %v)\n%s",
			time.Since(signalled).Round(time.Millisecond), cfg.shutdownGrace(), gw.diagnostics())
	}
	if code != 0 {
		t.Errorf("the gateway exited with status %d after SIGTERM, want 0 (%v)\n%s", code, gw.proc.Err(), gw.diagnostics())
	}
	t.Logf("gateway exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
}

// assertRefused waits up to d for addr to refuse TCP connections.
func assertRefused(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return
			}
			if errors.Is(err, syscall.ECONNRESET) && time.Now().Before(deadline) {
				// The SYN met the listener as it closed: try again.
				time.Sleep(50 * time.Millisecond)
				continue
			}
			t.Errorf("dial %s after SIGTERM: %v, want connection refused", addr, err)
			return
		}
		greeting := readLine(c, time.Second)
		c.Close()
		if time.Now().After(deadline) {
			t.Errorf("%s still accepts connections %v after SIGTERM (greeting %q), want connection refused", addr, d, greeting)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readLine reads one reply line from c, or returns the error as text.
func readLine(c net.Conn, d time.Duration) string {
	_ = c.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return line + "<" + err.Error() + ">"
	}
	return strings.TrimRight(line, "\r\n")
}
