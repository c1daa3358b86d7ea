package interop

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// agentPort is the gateway's agent listener inside the DMZ namespace (a
// fresh namespace: no other test can hold it).
const agentPort = 55990

// TestAgentNetns runs the reverse-connect agent the way it is deployed: a
// "dmz" namespace with the gateway and the clients, a "lan" namespace with
// vsftpd (FTPS, require_ssl_reuse=YES) and two agents (from two
// addresses, as two hosts), a veth link between
// them on which the LAN accepts no inbound connection at all (nftables)
// and lets out only connections to the gateway's agent port. It proves
// that the DMZ cannot open a TCP connection to vsftpd, that curl and lftp
// move 64 MiB both ways through the agents (PASV and EPSV, SHA-256
// checked), that new sessions keep working after one agent is killed
// mid-run, and that the surviving agent's metrics count their streams and
// bytes under the allow rules that let them through.
func TestAgentNetns(t *testing.T) {
	requireInterop(t)
	requireNetns(t)
	ctx := testContext(t, 10*time.Minute)
	net := newNetPair(t, "dmz", "lan")
	dmz, lan := net.A, net.B
	bin := gatewayBinary(t)
	dir := newDir(t, "agent-netns-", 0o711)
	t.Cleanup(func() { os.RemoveAll(dir) })

	// vsftpd listens on every address of the LAN namespace: only the
	// firewall stands between it and the DMZ.
	vs := startVsftpdNet(ctx, t, tlsExplicit, vsftpdNet{NS: lan, ListenIP: "0.0.0.0"})
	_, vsPort, _ := strings.Cut(vs.Addr, ":")
	lanFTP := net.IPB + ":" + vsPort
	if !tcpConnects(ctx, dmz, lanFTP, 3*time.Second) {
		t.Fatalf("before the firewall, the DMZ cannot reach %s: the test network is broken", lanFTP)
	}
	rules := fmt.Sprintf(`table inet ftpsgate_test {
	chain input {
		type filter hook input priority 0; policy drop;
		iif "lo" accept
		ct state established,related accept
	}
	chain output {
		type filter hook output priority 0; policy drop;
		oif "lo" accept
		ct state established,related accept
		ip daddr %s tcp dport %d ct state new accept
	}
}
`, net.IPA, agentPort)
	rulesPath := filepath.Join(dir, "lan.nft")
	if err := os.WriteFile(rulesPath, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := nsRun(ctx, lan, "nft", "-f", rulesPath); err != nil {
		t.Fatalf("nft -f in %s: %v: %s", lan, err, out)
	}
	if tcpConnects(ctx, dmz, lanFTP, 3*time.Second) {
		t.Fatalf("the DMZ opened a TCP connection to vsftpd at %s through the LAN's firewall", lanFTP)
	}
	if tcpConnects(ctx, dmz, fmt.Sprintf("%s:%d", net.IPB, vs.PasvLo), 2*time.Second) {
		t.Fatalf("the DMZ opened a TCP connection into the LAN's passive range")
	}

	// PKI: the gateway's agent-listener certificate (pinned by the agents)
	// and one client certificate per agent (pinned by the gateway).
	gwFiles := newPKI(t, filepath.Join(dir))
	gwPin := spkiPinOfFile(t, gwFiles.CertFile, gwFiles.KeyFile)
	ca, err := testpki.NewCA("agents")
	if err != nil {
		t.Fatal(err)
	}
	var agentPins []string
	agentFiles := make([][2]string, 2)
	for i := range agentFiles {
		leaf, err := ca.Client(fmt.Sprintf("agent-%d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, fmt.Sprintf("agent%d.pem", i+1)), filepath.Join(dir, fmt.Sprintf("agent%d.key", i+1))
		if err := testpki.WritePEM(cert, 0o644, "CERTIFICATE", leaf.DER); err != nil {
			t.Fatal(err)
		}
		if err := testpki.WritePEM(key, 0o600, "PRIVATE KEY", leaf.KeyDER); err != nil {
			t.Fatal(err)
		}
		agentFiles[i] = [2]string{cert, key}
		sum := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
		agentPins = append(agentPins, "sha256/"+base64.StdEncoding.EncodeToString(sum[:]))
	}

	// The gateway in the DMZ: its backend is 127.0.0.1 as the agents see
	// it (their own loopback), reached only through the group "lan".
	cfg := newGatewayConfig(t, vs.Addr, tlsExplicit, vs.CAFile)
	cfg.Extra = fmt.Sprintf(`agents:
  listen: "%s:%d"
  cert_file: %s
  key_file: %s
  wait_for_agent: 5s
  keepalive: 2s
  groups:
    lan:
      pins: [%q, %q]
`, net.IPA, agentPort, gwFiles.ChainFile, gwFiles.KeyFile, agentPins[0], agentPins[1])
	gwDir := t.TempDir()
	gwConf := writeConfig(t, gwDir, cfg.YAML())
	gw := startProcess(t, "ftpsgate(dmz)", filepath.Join(gwDir, "ftpsgate.log"),
		inNetns(dmz, "env", "FTPSGATE_BACKEND_VIA=lan", bin, "run", "--config", gwConf)...)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	waitForPortIn(wctx, t, dmz, cfg.ExplicitAddr, gw)
	diag := func() string { return gw.LogTail() + "\n" + vs.diagnostics() }

	// Two agents in the LAN, each with its admin endpoint on a port of the
	// LAN namespace that vsftpd does not use.
	agents := make([]*process, 2)
	adminPorts := make([]int, 2)
	for i, p := 0, agentPort+1; i < len(adminPorts); p++ {
		if strconv.Itoa(p) != vsPort && (p < vs.PasvLo || p > vs.PasvHi) {
			adminPorts[i] = p
			i++
		}
	}
	for i := range agents {
		conf := fmt.Sprintf(`gateways: ["%s:%d"]
group: lan
name: agent-%d
cert_file: %s
key_file: %s
gateway_pins: [%q]
allow: ["127.0.0.1:%s", "127.0.0.1:%d-%d"]
max_streams: 64
keepalive: 2s
backoff: {min: 200ms, max: 2s}
log: {level: info, format: json}
admin: {address: "127.0.0.1:%d"}
`, net.IPA, agentPort, i+1, agentFiles[i][0], agentFiles[i][1], gwPin, vsPort, vs.PasvLo, vs.PasvHi, adminPorts[i])
		// Each agent connects from an address of its own, as two LAN
		// hosts would: vsftpd refuses a data connection from another
		// address than its session's control connection's.
		conf += fmt.Sprintf("source_address: 127.0.0.%d\n", i+1)
		path := filepath.Join(dir, fmt.Sprintf("agent%d.yaml", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		agents[i] = startProcess(t, fmt.Sprintf("agent-%d(lan)", i+1), filepath.Join(dir, fmt.Sprintf("agent%d.log", i+1)),
			inNetns(lan, bin, "agent", "--config", path)...)
	}
	waitLogCount(ctx, t, gw, `"agent connected"`, 2)

	src, sum := sourceFile(t)
	client := func(pasv bool) curlClient {
		c := curlClient{Addr: cfg.ExplicitAddr, TLS: tlsExplicit, PASV: pasv, User: vs.User.Name, Password: vs.User.Password}
		return c
	}
	local := newDir(t, "agent-netns-local-", 0o755)
	for _, pasv := range []bool{true, false} {
		mode := map[bool]string{true: "pasv", false: "epsv"}[pasv]
		c := client(pasv)
		name := "curl-" + mode + ".bin"
		if out, err := nsRun(ctx, dmz, append([]string{"curl"}, append(c.args(), "-T", src, c.url(name))...)...); err != nil {
			t.Fatalf("curl %s upload through the agents: %v\n%s\n%s", mode, err, tail("curl", out, 3000), diag())
		}
		assertSameFile(t, "curl "+mode+" upload (on vsftpd)", filepath.Join(vs.Root, name), sum, bigFileSize)
		got := filepath.Join(local, name)
		if out, err := nsRun(ctx, dmz, append([]string{"curl"}, append(c.args(), "-o", got, c.url(name))...)...); err != nil {
			t.Fatalf("curl %s download through the agents: %v\n%s\n%s", mode, err, tail("curl", out, 3000), diag())
		}
		assertSameFile(t, "curl "+mode+" download", got, sum, bigFileSize)

		name = "lftp-" + mode + ".bin"
		got = filepath.Join(local, name)
		if out, err := lftpNetns(ctx, t, dmz, dir, cfg.ExplicitAddr, vs.User, !pasv, fmt.Sprintf("put %s -o %s\nget %s -o %s", lftpQuote(src), name, name, lftpQuote(got))); err != nil {
			t.Fatalf("lftp %s through the agents: %v\n%s\n%s", mode, err, tail("lftp", out, 3000), diag())
		}
		assertSameFile(t, "lftp "+mode+" upload (on vsftpd)", filepath.Join(vs.Root, name), sum, bigFileSize)
		assertSameFile(t, "lftp "+mode+" download", got, sum, bigFileSize)
	}
	for i, a := range agents {
		if !strings.Contains(a.Log(), `"stream ended"`) {
			t.Errorf("agent %d carried no stream: the gateway did not spread sessions\n%s", i+1, a.LogTail())
		}
	}

	// Kill agent 1 in the middle of two downloads (slowed to 16 MB/s, so
	// they last 4 s); new sessions go to agent 2.
	c := client(false)
	var running []*exec.Cmd
	for i := range 2 {
		out := filepath.Join(local, fmt.Sprintf("during-kill-%d.bin", i))
		args := append(c.args(), "--limit-rate", "16M", "-o", out, c.url("curl-epsv.bin"))
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", dmz, "curl"}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running = append(running, cmd)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		n := 0
		for i := range 2 {
			if st, err := os.Stat(filepath.Join(local, fmt.Sprintf("during-kill-%d.bin", i))); err == nil && st.Size() > 4<<20 {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two slow downloads did not start\n%s", diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-agents[0].Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range running {
		_ = cmd.Wait() // may fail: some of their streams were on agent 1
	}
	waitLogCount(ctx, t, gw, `"agent disconnected"`, 1)
	t.Logf("agent 1 killed; streams carried so far: agent 1 %d, agent 2 %d", strings.Count(agents[0].Log(), `"stream ended"`), strings.Count(agents[1].Log(), `"stream ended"`))
	for i := range 3 {
		got := filepath.Join(local, fmt.Sprintf("after-kill-%d.bin", i))
		if out, err := nsRun(ctx, dmz, append([]string{"curl"}, append(c.args(), "-o", got, c.url("curl-pasv.bin"))...)...); err != nil {
			t.Fatalf("session %d after agent 1 was killed: %v\n%s\n%s", i, err, tail("curl", out, 3000), diag())
		}
		assertSameFile(t, fmt.Sprintf("download %d after the kill", i), got, sum, bigFileSize)
	}
	// Agent 2 carried those three sessions: its metrics count them under
	// the allow rules that let their streams through, vsftpd's control
	// port and its passive range.
	metrics, err := nsRun(ctx, lan, "curl", "-sS", "--max-time", "10", fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPorts[1]))
	if err != nil {
		t.Fatalf("agent 2's /metrics: %v: %s", err, metrics)
	}
	control, passive := "127.0.0.1:"+vsPort, fmt.Sprintf("127.0.0.1:%d-%d", vs.PasvLo, vs.PasvHi)
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`ftpsgate_agent_rule_streams_total{result="connected",rule="` + control + `"}`, 3},
		{`ftpsgate_agent_rule_streams_total{result="connected",rule="` + passive + `"}`, 3},
		{`ftpsgate_agent_rule_relayed_bytes_total{direction="from_destination",rule="` + passive + `"}`, 3 * bigFileSize},
	} {
		if v, err := strconv.ParseFloat(promSample(metrics, c.series), 64); err != nil || v < c.min {
			t.Errorf("agent 2: %s = %v (%v), want at least %v\n%s", c.series, v, err, c.min, metrics)
		}
	}
	if tcpConnects(ctx, dmz, lanFTP, 2*time.Second) {
		t.Fatalf("the DMZ reached vsftpd at %s at the end of the test", lanFTP)
	}
}

// promSample returns the value of the sample whose name and labels are
// exactly series in a Prometheus text exposition, or "".
func promSample(exposition, series string) string {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// lftpNetns runs an lftp script (after the login) in namespace ns.
func lftpNetns(ctx context.Context, t *testing.T, ns, dir, addr string, u ftpAccount, epsv bool, body string) (string, error) {
	t.Helper()
	q := lftpQuote
	script := strings.Join([]string{
		"set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 60",
		"set ftp:ssl-force true", "set ftp:ssl-protect-data true", "set ftp:ssl-allow yes",
		"set ssl:verify-certificate no", "set ssl:check-hostname no",
		"set ftp:passive-mode on", fmt.Sprintf("set ftp:prefer-epsv %s", map[bool]string{true: "yes", false: "no"}[epsv]),
		"set xfer:clobber on",
		fmt.Sprintf("open -u %s,%s ftp://%s", q(u.Name), q(u.Password), addr),
		body, "quit",
	}, "\n") + "\n"
	path := filepath.Join(dir, fmt.Sprintf("lftp-%d.script", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return nsRun(ctx, ns, "lftp", "-f", path)
}

// waitLogCount waits until p's log holds s n times.
func waitLogCount(ctx context.Context, t *testing.T, p *process, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.Log(), s) < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: %d times %s in the log, want %d\n%s", p.Name, strings.Count(p.Log(), s), s, n, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spkiPinOfFile is the sha256/BASE64 pin of a certificate file.
func spkiPinOfFile(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
}
