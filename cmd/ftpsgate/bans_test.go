package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBansCommand runs the gateway with its admin API and drives
// `ftpsgate bans` against it; the ban is in force at the gateway's door.
func TestBansCommand(t *testing.T) {
	adminAddr, ftpAddr := freeAddr(t), freeAddr(t)
	state := filepath.Join(t.TempDir(), "bans.json")
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte("cli-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeConfig(t, fmt.Sprintf(`
listeners:
  - {name: explicit, address: "%s", tls: explicit}
backend: {address: "127.0.0.1:9"}
passive: {ports: 59800-59801}
bans: {state_file: "%s"}
admin: {address: "%s", token_file: "%s"}
log: {level: error, format: json}
`, ftpAddr, state, adminAddr, tokenFile))
	cfg, err := loadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- serveContext(ctx, cfg, io.Discard) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit code %d", code)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin API did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	greeting := func(from string) string {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", ftpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b := make([]byte, 3)
		_, _ = io.ReadFull(c, b)
		return string(b)
	}
	// A session of 127.0.0.3 that is already running.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 2 * time.Second}
	running, err := d.Dial("tcp", ftpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Close()
	rd := bufio.NewReader(running)
	_ = running.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "220") {
		t.Fatalf("greeting %q", line)
	}
	if code, out, errOut := runCLI("bans", "add", "--config", file, "--duration", "1h", "--reason", "test", "127.0.0.3"); code != 0 || !strings.Contains(out, "banned 127.0.0.3") {
		t.Fatalf("bans add: %d %q %q", code, out, errOut)
	}
	// The ban ends it (bans.end_sessions is on by default).
	_ = running.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, "421") || !strings.Contains(line, "banned") {
		t.Fatalf("running session of the banned address got %q", line)
	}
	if got := greeting("127.0.0.3"); got != "421" {
		t.Fatalf("banned address greeted with %q", got)
	}
	if got := greeting("127.0.0.4"); got != "220" {
		t.Fatalf("127.0.0.4 greeted with %q", got)
	}
	if code, out, _ := runCLI("bans", "list", "--admin", adminAddr, "--token-file", tokenFile); code != 0 || !strings.Contains(out, "127.0.0.3") {
		t.Fatalf("bans list: %d %q", code, out)
	}
	// No token, or a wrong one: refused, even on loopback.
	if code, _, errOut := runCLI("bans", "list", "--admin", adminAddr); code == 0 || !strings.Contains(errOut, "--token-file") {
		t.Fatalf("bans list without a token: %d %q", code, errOut)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI("bans", "add", "--admin", adminAddr, "--token-file", wrong, "127.0.0.5"); code == 0 || !strings.Contains(errOut, "401") {
		t.Fatalf("bans add with a wrong token: %d %q", code, errOut)
	}
	if code, out, errOut := runCLI("bans", "remove", "--config", file, "127.0.0.3"); code != 0 || !strings.Contains(out, "unbanned") {
		t.Fatalf("bans remove: %d %q %q", code, out, errOut)
	}
	if got := greeting("127.0.0.3"); got != "220" {
		t.Fatalf("after removal 127.0.0.3 got %q", got)
	}
	if code, _, _ := runCLI("bans", "remove", "--config", file, "127.0.0.3"); code == 0 {
		t.Fatal("removing an absent ban succeeded")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer cli-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"ftpsgate_certificate_expiry_timestamp_seconds ",
		`ftpsgate_sessions_active{listener="explicit"} `,
		"ftpsgate_bans_added_total 1",
		"ftpsgate_bans_active 0",
		`ftpsgate_connections_refused_total{listener="explicit",reason="banned"} 1`,
		"go_goroutines ",
		"process_open_fds ",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	checkMetrics(t, b)
}

// checkMetrics runs `promtool check metrics` on an exposition. Without
// promtool the check is skipped, unless FTPSGATE_INTEROP=1 (CI installs it).
func checkMetrics(t *testing.T, exposition []byte) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FTPSGATE_INTEROP") == "1" {
			t.Fatal("promtool not found (Debian package prometheus)")
		}
		t.Log("promtool not found: metrics not checked")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestAdminValidate(t *testing.T) {
	text := goodConfig + "admin: {address: \"0.0.0.0:9090\"}\n"
	code, _, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if code == 0 || !strings.Contains(errOut, "admin.token_file: required on a TCP address") {
		t.Fatalf("a public admin address without a token: %d %q", code, errOut)
	}
	text = goodConfig + "admin: {address: \"127.0.0.1:9090\"}\n"
	code, _, errOut = runCLI("validate", "--config", writeConfig(t, text))
	if code == 0 || !strings.Contains(errOut, "admin.token_file: required on a TCP address (127.0.0.1:9090); use a unix socket") {
		t.Fatalf("a loopback admin address without a token: %d %q", code, errOut)
	}
	text = goodConfig + "admin: {address: \"unix:" + filepath.Join(t.TempDir(), "admin.sock") + "\"}\n"
	if code, _, errOut = runCLI("validate", "--config", writeConfig(t, text)); code != 0 {
		t.Fatalf("a unix socket without a token: %d %q", code, errOut)
	}
	text = goodConfig + "limits: {conn_rate: -1}\nbans: {window: 0s}\n"
	code, _, errOut = runCLI("validate", "--config", writeConfig(t, text))
	if code == 0 || !strings.Contains(errOut, "limits.conn_rate:") || !strings.Contains(errOut, "bans.window:") {
		t.Fatalf("bad limits and bans: %d %q", code, errOut)
	}
}
