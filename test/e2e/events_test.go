package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// scrape returns the gateway's metrics as /metrics serves them.
func scrape(t *testing.T, g *gateway) string {
	t.Helper()
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// metricValue returns the value of the sample whose name and labels are
// exactly series, or "" if there is none.
func metricValue(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// promtoolCheck runs `promtool check metrics` on an exposition. Without
// promtool the check is skipped, unless FTPSGATE_INTEROP=1 (CI installs it).
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("FTPSGATE_INTEROP") == "1" {
			t.Fatal("promtool not found (Debian package prometheus)")
		}
		t.Log("promtool not found: exposition not checked")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsAfterSession: one session with a failed login, a data
// connection from another address (refused), a download and an upload.
// Each shows in /metrics, and promtool finds nothing to say about it.
func TestMetricsAfterSession(t *testing.T) {
	g := startGateway(t)
	want := randomBytes(t, 100<<10)
	if err := os.WriteFile(filepath.Join(g.root, "file.bin"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS wrong-password", wire.StatusNotLoggedIn)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)

	port := c.epsv()
	stranger := c.dataConn(port, "127.0.0.2")
	_ = stranger.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.Copy(io.Discard, stranger) // closed by the gateway
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR file.bin")
	c.expect(wire.StatusAboutToSend)
	_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(data)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if len(got) != len(want) {
		t.Fatalf("download: %d bytes, want %d", len(got), len(want))
	}
	port = c.epsv()
	data = c.tlsData(c.dataConn(port, ""))
	c.send("STOR up.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Write(want[:5000]); err != nil {
		t.Fatal(err)
	}
	if err := data.Close(); err != nil {
		t.Fatal(err)
	}
	c.expect(wire.StatusClosingDataConnection)
	c.send("XYZZY") // counted as "other"
	odd := c.read()

	// A command's line and event follow its reply: wait for the last one's.
	waitFor(t, func() bool { return metricValue(scrape(t, g), `ftpsgate_commands_total{verb="other"}`) == "1" }, "the XYZZY command counted")
	m := scrape(t, g)
	for series, value := range map[string]string{
		`ftpsgate_logins_total{listener="explicit",result="failed"}`:                           "1",
		`ftpsgate_logins_total{listener="explicit",result="ok"}`:                               "1",
		`ftpsgate_data_connections_refused_total{listener="explicit",reason="source_address"}`: "1",
		`ftpsgate_transfers_total{direction="download",result="ok"}`:                           "1",
		`ftpsgate_transfers_total{direction="upload",result="ok"}`:                             "1",
		`ftpsgate_transfers_total{direction="download",result="failed"}`:                       "0",
		`ftpsgate_transfer_bytes_total{direction="download"}`:                                  "102400",
		`ftpsgate_transfer_bytes_total{direction="upload"}`:                                    "5000",
		`ftpsgate_transfer_size_bytes_count{direction="download"}`:                             "1",
		`ftpsgate_transfer_duration_seconds_count{direction="upload"}`:                         "1",
		`ftpsgate_commands_total{verb="PASS"}`:                                                 "2",
		`ftpsgate_commands_total{verb="EPSV"}`:                                                 "2",
		`ftpsgate_commands_total{verb="other"}`:                                                "1",
		`ftpsgate_connections_accepted_total{listener="explicit"}`:                             "1",
		`ftpsgate_sessions_active{listener="explicit"}`:                                        "1",
		`ftpsgate_tls_handshakes_total{listener="explicit",result="ok",version="1.3"}`:         "1",
		`ftpsgate_backend_dial_duration_seconds_count`:                                         "1",
		`ftpsgate_backend_dial_errors_total`:                                                   "0",
	} {
		if got := metricValue(m, series); got != value {
			t.Errorf("%s = %q, want %s", series, got, value)
		}
	}
	if metricValue(m, "ftpsgate_certificate_expiry_timestamp_seconds") == "" {
		t.Error("no ftpsgate_certificate_expiry_timestamp_seconds")
	}
	promtoolCheck(t, m)

	// Every command line carries the reply the client got.
	codes := map[string]int{}
	for _, l := range logLines(t, g, "command") {
		codes[l.Cmd] = l.Code
	}
	for cmd, code := range map[string]int{"PASS ****": 230, "RETR file.bin": 226, "STOR up.bin": 226, "EPSV": 229, "XYZZY": odd.Code} {
		if codes[cmd] != code {
			t.Errorf("command line %q: code %d, want %d", cmd, codes[cmd], code)
		}
	}
}

type logLine struct {
	Message string `json:"message"`
	Cmd     string `json:"cmd"`
	Code    int    `json:"code"`
	Path    string `json:"path"`
}

// logLines returns the gateway's JSON log lines with message msg.
func logLines(t *testing.T, g *gateway, msg string) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(g.logs.String(), "\n") {
		var l logLine
		if json.Unmarshal([]byte(raw), &l) == nil && l.Message == msg {
			out = append(out, l)
		}
	}
	return out
}

// TestTransferLogHasClientReply: a download the backend reports 226 but
// whose TLS data stream was truncated ends in 426 for the client; the
// transfer line and the metrics say 426 and failed, not the backend's 226.
func TestTransferLogHasClientReply(t *testing.T) {
	cert, caFile := selfSigned(t)
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		if tc, ok := data.(*tls.Conn); ok {
			_, _ = tc.Write(bytes.Repeat([]byte("t"), 300<<10))
			_ = tc.NetConn().Close() // no close_notify
		}
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend = proxy.Backend{Address: f.ln.Addr().String(), TLS: proxy.TLSExplicit, Trust: policy.BackendTLS{CAFile: caFile}}
		c.Timeouts.Connect = time.Second
	})
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR cut.bin")
		c.expect(wire.StatusAboutToSend)
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, data)
		c.expect(wire.StatusTransferAborted)
	})
	lines := logLines(t, g, "transfer")
	if len(lines) != 1 || lines[0].Code != wire.StatusTransferAborted {
		t.Errorf("transfer lines %+v, want one with code 426 (what the client got)", lines)
	}
	m := scrape(t, g)
	if got := metricValue(m, `ftpsgate_transfers_total{direction="download",result="failed"}`); got != "1" {
		t.Errorf("failed downloads = %q, want 1", got)
	}
}
