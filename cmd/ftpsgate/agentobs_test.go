package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// agentYAML is a loadable agent.yaml; extra is appended.
func agentYAML(t *testing.T, gateway, extra string) string {
	t.Helper()
	files, err := testpki.WriteServer(t.TempDir(), "agent obs")
	if err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("%x", sha256.Sum256([]byte("x")))
	return fmt.Sprintf("gateways: [%q]\ngroup: lan\ncert_file: %s\nkey_file: %s\ngateway_pins: [%s]\n%s",
		gateway, files.CertFile, files.KeyFile, pin, extra)
}

// TestAgentAdminConfig: admin.address takes host:port (an IP address or
// localhost); off it, token_file is an error; a non-loopback address is a
// warning, at start and with --validate; shutdown_grace defaults to the
// gateway's 30s.
func TestAgentAdminConfig(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := loadAgent(writeConfig(t, agentYAML(t, "127.0.0.1:55990", "allow: []\n")))
	if err != nil {
		t.Fatal(err)
	}
	if l.admin.address != "" || l.agent.ShutdownGrace != 30*time.Second || len(l.warnings()) != 0 {
		t.Fatalf("defaults: admin %+v, shutdown_grace %v, warnings %v", l.admin, l.agent.ShutdownGrace, l.warnings())
	}
	for _, tc := range []struct {
		extra, warn string
	}{
		{"admin: {address: \"127.0.0.1:9101\"}\n", ""},
		{"admin: {address: \"[::1]:9101\"}\n", ""},
		{"admin: {address: \"localhost:9101\"}\n", ""},
		{"admin: {address: \"0.0.0.0:9101\"}\n", "admin.address: 0.0.0.0:9101 is not a loopback address: the agent, which otherwise accepts no connection, listens on the network and answers /healthz and /metrics to anyone who reaches it (no token_file)"},
		{"admin: {address: \":9101\", token_file: " + tokenFile + "}\n", "admin.address: :9101 is not a loopback address: the agent, which otherwise accepts no connection, listens on the network (/healthz answers anyone; /metrics needs the token)"},
		{"admin: {address: \"10.0.0.20:9101\"}\n", "admin.address: 10.0.0.20:9101 is not a loopback address"},
	} {
		l, err := loadAgent(writeConfig(t, agentYAML(t, "127.0.0.1:55990", tc.extra)))
		if err != nil {
			t.Fatalf("%s: %v", tc.extra, err)
		}
		var ws []string
		for _, w := range l.warnings() {
			ws = append(ws, w.String())
		}
		if tc.warn == "" && len(ws) != 0 || tc.warn != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0], tc.warn)) {
			t.Errorf("%s: warnings %q, want %q", tc.extra, ws, tc.warn)
		}
	}
	for _, tc := range []struct{ extra, key string }{
		{"admin: {address: \"nohost\"}\n", "admin.address"},
		{"admin: {address: \"ftp.lan:9101\"}\n", "admin.address"},
		{"admin: {address: \"127.0.0.1:99999\"}\n", "admin.address"},
		{"admin: {token_file: " + tokenFile + "}\n", "admin.token_file"},
		{"admin: {address: \"127.0.0.1:9101\", token_file: /nonexistent/token}\n", "admin.token_file"},
		{"shutdown_grace: 0s\n", "shutdown_grace"},
	} {
		if _, err := loadAgent(writeConfig(t, agentYAML(t, "127.0.0.1:55990", tc.extra))); err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: %v, want an error naming %s", tc.extra, err, tc.key)
		}
	}
	var out strings.Builder
	if code := cmdAgent([]string{"--config", writeConfig(t, agentYAML(t, "127.0.0.1:55990", "admin: {address: \"0.0.0.0:9101\"}\n")), "--validate"}, &out); code != 0 ||
		!strings.Contains(out.String(), "warning: admin.address: 0.0.0.0:9101 is not a loopback address") {
		t.Errorf("--validate: exit %d:\n%s", code, out.String())
	}
}

// TestAgentAPI: GET /healthz needs no token and says 503 while no tunnel
// is up; GET /metrics needs the token when token_file is set.
func TestAgentAPI(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := buildAgentAdmin(agentAdminFile{Address: "127.0.0.1:0", TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := tunnel.NewAgentMetrics(reg, []string{"gw.example:6990"})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{"gw.example:6990"}, Group: "lan"}, zerolog.Nop(), tunnel.WithAgentMetrics(m))
	api, err := startAgentAPI(a, ag, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer api.shutdown()
	base := "http://" + api.addr()
	code, body := httpGet(t, base+"/healthz", "")
	var h tunnel.Health
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &h) != nil || h.Status != "down" ||
		len(h.Gateways) != 1 || h.Gateways[0].Address != "gw.example:6990" || h.Gateways[0].State != "down" {
		t.Fatalf("healthz: %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("metrics without the token: %d", code)
	}
	if code, _ := httpGet(t, base+"/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("metrics with a wrong token: %d", code)
	}
	code, body = httpGet(t, base+"/metrics", "s3cret")
	if code != http.StatusOK || !strings.Contains(body, `ftpsgate_agent_tunnel_up{gateway="gw.example:6990"} 0`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// TestAgentSIGHUP: a SIGHUP puts the file's new allow list and log.level
// in force and logs one line; a file with a problem keeps both, and the
// error line names the key at fault.
func TestAgentSIGHUP(t *testing.T) {
	path := writeConfig(t, agentYAML(t, "127.0.0.1:55990", "allow: [\"10.0.0.5:21\"]\nlog: {level: info}\n"))
	l, err := loadAgent(path)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuf
	level := &levelGate{w: &logBuf}
	level.set(l.log.Level)
	log := level.logger()
	m := tunnel.NewAgentMetrics(prometheus.NewRegistry(), l.agent.Gateways)
	ag := tunnel.NewAgent(l.agent, log, tunnel.WithAgentMetrics(m))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloadAgentOnHUP(ctx, path, ag, level, m, log)
	hup := func() {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	rewrite := func(extra string) {
		text := agentYAML(t, "127.0.0.1:55990", extra)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	rewrite("allow: [\"10.0.0.6:21\", \"10.0.0.6:40000-40099\"]\nlog: {level: debug}\n")
	hup()
	waitFor(t, &logBuf, "agent configuration reloaded")
	if got := allowStrings(ag.Allow()); strings.Join(got, " ") != "10.0.0.6:21 10.0.0.6:40000-40099" {
		t.Errorf("allow after the reload: %v", got)
	}
	if ag.Allow().Allows("10.0.0.5:21") || !ag.Allow().Allows("10.0.0.6:21") {
		t.Error("the reloaded list does not judge")
	}
	if level.level() != zerolog.DebugLevel {
		t.Errorf("log level %v after the reload, want debug", level.level())
	}
	if !strings.Contains(logBuf.String(), `"allow":["10.0.0.6:21","10.0.0.6:40000-40099"]`) {
		t.Errorf("the reload line does not list the new allow list:\n%s", logBuf.String())
	}

	rewrite("allow: [\"10.0.0.7:21\", \"10.0.0.7\"]\nlog: {level: error}\n")
	hup()
	waitFor(t, &logBuf, "agent configuration reload failed")
	if !strings.Contains(logBuf.String(), `"keys":["allow[1]"]`) {
		t.Errorf("the failure does not name allow[1]:\n%s", logBuf.String())
	}
	if got := allowStrings(ag.Allow()); len(got) != 2 || got[0] != "10.0.0.6:21" {
		t.Errorf("a bad file changed the allow list: %v", got)
	}
	if level.level() != zerolog.DebugLevel {
		t.Errorf("a bad file changed the log level to %v", level.level())
	}

	// A lower level drops lines below it.
	level.set("warn")
	log.Info().Msg("quiet line")
	if strings.Contains(logBuf.String(), "quiet line") {
		t.Error("an info line passed a warn level")
	}
}

func waitFor(t *testing.T, b interface{ String() string }, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", s, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunAgent: the agent as ftpsgate agent runs it: its admin endpoint
// says 200 once the tunnel to a real hub is up and serves the metrics; at
// shutdown (ctx: SIGTERM) a stream relaying goes on, /healthz says
// draining, and runAgent returns once the stream ended.
func TestRunAgent(t *testing.T) {
	ca, err := testpki.NewCA("run agent")
	if err != nil {
		t.Fatal(err)
	}
	gwLeaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := testpki.WriteServer(dir, "agent key")
	if err != nil {
		t.Fatal(err)
	}
	agentCert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	agentPin := sha256.Sum256(mustLeaf(t, agentCert).RawSubjectPublicKeyInfo)
	gwCert := gwLeaf.TLS
	hub := tunnel.NewHub(tunnel.HubConfig{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &gwCert, nil },
		Groups:         map[string][][32]byte{"lan": {agentPin}}, WaitForAgent: 300 * time.Millisecond,
	}, zerolog.Nop(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = hub.Serve(ln) }()
	defer func() { hub.Close(); <-hubDone }()
	echo := echoListener(t)

	al, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the agent's admin.address
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := al.Addr().String()
	al.Close()
	gwPin := sha256.Sum256(gwLeaf.Cert.RawSubjectPublicKeyInfo)
	text := fmt.Sprintf("gateways: [%q]\ngroup: lan\nname: a1\ncert_file: %s\nkey_file: %s\ngateway_pins: [%x]\nallow: [%q]\nadmin: {address: %q}\nshutdown_grace: 20s\nlog: {level: info, format: json}\n",
		ln.Addr().String(), files.CertFile, files.KeyFile, gwPin[:], echo, adminAddr)
	l, err := loadAgent(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- runAgent(ctx, "", l, logFile) }()

	base := "http://" + adminAddr
	waitHTTP(t, base+"/healthz", http.StatusOK)
	if _, body := httpGet(t, base+"/metrics", ""); !strings.Contains(body, `ftpsgate_agent_tunnel_up{gateway="`+ln.Addr().String()+`"} 1`) ||
		!strings.Contains(body, "go_goroutines ") {
		t.Errorf("metrics:\n%s", body)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	c, err := hub.Dialer("lan").DialBackend(dctx, echo, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	cancel() // SIGTERM
	waitHTTP(t, base+"/healthz", http.StatusServiceUnavailable)
	if _, body := httpGet(t, base+"/healthz", ""); !strings.Contains(body, `"status":"draining"`) {
		t.Errorf("healthz while draining: %s", body)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("a stream relaying at shutdown: %q %v", b, err)
	}
	select {
	case <-done:
		t.Fatal("runAgent returned while a stream was relaying")
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runAgent did not return once its last stream ended")
	}
	logText, _ := os.ReadFile(logFile.Name())
	for _, want := range []string{"agent admin endpoint listening", "tunnel up", "waiting for the streams relaying now", "ftpsgate agent stopped"} {
		if !strings.Contains(string(logText), want) {
			t.Errorf("no %q in the log:\n%s", want, logText)
		}
	}
	if _, err := net.DialTimeout("tcp", adminAddr, time.Second); err == nil {
		t.Error("the admin endpoint still listens after runAgent returned")
	}
}

func waitHTTP(t *testing.T, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, err := (&http.Client{Timeout: time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v %v, want %d", url, resp, err, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echoListener echoes each connection until EOF.
func echoListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func mustLeaf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}
