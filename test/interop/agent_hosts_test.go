package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// lanHosts is a deployment in three namespaces: a DMZ host (the gateway
// and the clients) and two LAN hosts, A and B, each linked to the DMZ
// (10.99.1.0/24, 10.99.2.0/24) and to each other (the LAN, 10.99.3.0/24).
// The DMZ has no route into the LAN.
type lanHosts struct {
	DMZ, A, B  string
	DMZForA    string // the DMZ's address on its link with A (A's agents dial it)
	DMZForB    string
	AOnDMZLink string // A's address on that link (reachable from the DMZ, but for the firewall)
	ALAN, BLAN string // their LAN addresses
}

func newLanHosts(t *testing.T) lanHosts {
	t.Helper()
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	h := lanHosts{DMZ: "fg-dmz-" + id, A: "fg-hosta-" + id, B: "fg-hostb-" + id,
		DMZForA: "10.99.1.1", AOnDMZLink: "10.99.1.2", DMZForB: "10.99.2.1", ALAN: "10.99.3.1", BLAN: "10.99.3.2"}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{h.DMZ, h.A, h.B} {
		ip("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		ip("-n", ns, "link", "set", "lo", "up")
	}
	link := func(n int, nsX, ipX, nsY, ipY string) {
		vX, vY := fmt.Sprintf("fg%dx%s", n, id), fmt.Sprintf("fg%dy%s", n, id)
		ip("link", "add", vX, "type", "veth", "peer", "name", vY)
		t.Cleanup(func() { _ = exec.Command("ip", "link", "del", vX).Run() })
		ip("link", "set", vX, "netns", nsX)
		ip("link", "set", vY, "netns", nsY)
		ip("-n", nsX, "addr", "add", ipX+"/24", "dev", vX)
		ip("-n", nsY, "addr", "add", ipY+"/24", "dev", vY)
		ip("-n", nsX, "link", "set", vX, "up")
		ip("-n", nsY, "link", "set", vY, "up")
	}
	link(1, h.DMZ, h.DMZForA, h.A, h.AOnDMZLink)
	link(2, h.DMZ, h.DMZForB, h.B, "10.99.2.2")
	link(3, h.A, h.ALAN, h.B, h.BLAN)
	return h
}

// lanFirewall lets host ns accept nothing but from the LAN (and replies),
// and send nothing but to the LAN and to the gateway's agent port.
func lanFirewall(ctx context.Context, t *testing.T, dir, ns, gateway string) {
	t.Helper()
	rules := fmt.Sprintf(`table inet ftpsgate_test {
	chain input {
		type filter hook input priority 0; policy drop;
		iif "lo" accept
		ct state established,related accept
		ip saddr 10.99.3.0/24 accept
	}
	chain output {
		type filter hook output priority 0; policy drop;
		oif "lo" accept
		ct state established,related accept
		ip daddr 10.99.3.0/24 accept
		ip daddr %s tcp dport %d ct state new accept
	}
}
`, gateway, agentPort)
	path := filepath.Join(dir, ns+".nft")
	if err := os.WriteFile(path, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := nsRun(ctx, ns, "nft", "-f", path); err != nil {
		t.Fatalf("nft -f in %s: %v: %s", ns, err, out)
	}
}

// adminClient asks the gateway's admin API on its unix socket.
type adminClient struct{ c *http.Client }

func newAdminClient(sock string) adminClient {
	return adminClient{&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}
}

func (a adminClient) get(path string) (int, string) {
	resp, err := a.c.Get("http://gateway" + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}

// backendUp is ftpsgate_backend_up of backend in /metrics: "1", "0" or "".
func (a adminClient) backendUp(backend string) string {
	_, body := a.get("/metrics")
	prefix := `ftpsgate_backend_up{backend="` + backend + `"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

// TestAgentHosts runs the agents as deployed on two LAN hosts (see
// lanHosts): host A runs vsftpd A (FTPS, require_ssl_reuse=YES, its PASV
// replies naming another address than its own, pasv_address) and agent a1;
// host B runs vsftpd B and agents a2 and b1. The gateway in the DMZ has a
// pool of two backends: files-a by a name only the LAN resolves (A's LAN
// address) through the group lan
// (a1 beside the server, a2 across the LAN), and files-b at 127.0.0.1 as
// b1 sees it (through the group site-b), whose passive port is the port
// of the gateway's own explicit listener (in the DMZ). Both are health
// checked through the agents (TLS and a probe login). The LAN firewalls
// let nothing in from the DMZ and nothing out but the agent port.
//
// It checks: transfers with curl (EPSV, PASV), lftp and ftplib on both
// members; that losing site-b's only agent takes files-b down (metric,
// /v1/backends) while /readyz stays ready and sessions go to files-a; that
// files-a stays up on a2 alone, and goes down with both its agents (then
// /readyz is 503 and a login gets 421); that restarted agents rejoin and
// the backends come back; that agents killed in the middle of a download
// and an upload fail the clients' transfers; that a draining agent
// (SIGTERM) still carries its session's next transfer; and that when host
// A's link goes silent (no FIN), sessions go through a2 at once and
// files-a stays up.
func TestAgentHosts(t *testing.T) {
	requireInterop(t)
	requireNetns(t)
	ctx := testContext(t, 5*time.Minute)
	h := newLanHosts(t)
	bin := gatewayBinary(t)
	dir := newDir(t, "agent-hosts-", 0o711)
	t.Cleanup(func() { os.RemoveAll(dir) })

	gwPort := freePort(t) // the gateway's explicit listener, 127.0.0.1 in the DMZ
	gwAddr := loopbackAddr(gwPort)
	vsA := startVsftpdNet(ctx, t, tlsExplicit, vsftpdNet{NS: h.A, ListenIP: "0.0.0.0",
		Extra: []string{"pasv_address=192.0.2.99", "pasv_addr_resolve=NO"}})
	vsB := startVsftpdNet(ctx, t, tlsExplicit, vsftpdNet{NS: h.B, ListenIP: "127.0.0.1",
		Extra: []string{fmt.Sprintf("pasv_min_port=%d", gwPort), fmt.Sprintf("pasv_max_port=%d", gwPort)}})
	_, portA, _ := strings.Cut(vsA.Addr, ":")
	filesA := h.ALAN + ":" + portA
	// The gateway names vsftpd A by a LAN name that only the LAN's hosts
	// resolve (ip netns exec mounts /etc/netns/NS/hosts over /etc/hosts).
	const nameA = "ftp-a.lan.test"
	for _, ns := range []string{h.A, h.B} {
		etc := filepath.Join("/etc/netns", ns)
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(etc) })
		if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1 localhost\n"+h.ALAN+" "+nameA+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	byName := nameA + ":" + portA
	if out, err := nsRun(ctx, h.DMZ, "getent", "hosts", nameA); err == nil {
		t.Fatalf("the DMZ resolves %s: %s", nameA, out)
	}
	if out, err := nsRun(ctx, h.B, "getent", "hosts", nameA); err != nil || !strings.Contains(out, h.ALAN) {
		t.Fatalf("host B does not resolve %s to %s: %v %s", nameA, h.ALAN, err, out)
	}
	lanFirewall(ctx, t, dir, h.A, h.DMZForA)
	lanFirewall(ctx, t, dir, h.B, h.DMZForB)
	for _, addr := range []string{h.AOnDMZLink + ":" + portA, fmt.Sprintf("%s:%d", h.AOnDMZLink, vsA.PasvLo), filesA} {
		if tcpConnects(ctx, h.DMZ, addr, 2*time.Second) {
			t.Fatalf("the DMZ opened a TCP connection to %s in the LAN", addr)
		}
	}
	if !tcpConnects(ctx, h.B, filesA, 3*time.Second) {
		t.Fatalf("host B cannot reach vsftpd A at %s across the LAN", filesA)
	}

	// PKI: the agent listener's certificate, one client certificate per
	// agent.
	gwFiles := newPKI(t, dir)
	gwPin := spkiPinOfFile(t, gwFiles.CertFile, gwFiles.KeyFile)
	ca, err := testpki.NewCA("agents")
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{}
	certs := map[string][2]string{}
	for _, name := range []string{"a1", "a2", "b1"} {
		leaf, err := ca.Client(name)
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		if err := testpki.WritePEM(cert, 0o644, "CERTIFICATE", leaf.DER); err != nil {
			t.Fatal(err)
		}
		if err := testpki.WritePEM(key, 0o600, "PRIVATE KEY", leaf.KeyDER); err != nil {
			t.Fatal(err)
		}
		certs[name] = [2]string{cert, key}
		sum := sha256.Sum256(leaf.Cert.RawSubjectPublicKeyInfo)
		pins[name] = "sha256/" + base64.StdEncoding.EncodeToString(sum[:])
	}

	u := vsA.User // one PAM account: both servers know it
	passFile := filepath.Join(dir, "probe.pass")
	if err := os.WriteFile(passFile, []byte(u.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	health := fmt.Sprintf("{interval: 2s, timeout: 2s, rise: 2, fall: 2, tls: true, user: %s, password_file: %s}", u.Name, passFile)
	gwConf := fmt.Sprintf(`listeners:
  - {name: explicit, address: "%s", tls: explicit, require_tls: true}
tls:
  cert_file: ""
  key_file: ""
  require_protected_data: true
backends:
  - name: files-a
    address: "%s"
    tls: explicit
    ca_file: %s
    server_name: localhost
    data_ports: %d-%d
    via: lan
    health: %s
  - name: files-b
    address: "%s"
    tls: explicit
    ca_file: %s
    via: site-b
    health: %s
pools:
  - {name: files, members: [files-a, files-b], balance: round_robin}
routing:
  default: files
passive:
  public_host: 127.0.0.1
  ports: %d-%d
agents:
  listen: "0.0.0.0:%d"
  cert_file: %s
  key_file: %s
  wait_for_agent: 2s
  keepalive: 15s
  groups:
    lan:
      pins: [%q, %q]
    site-b:
      pins: [%q]
admin:
  address: "unix:%s"
timeouts:
  idle: 5m
  connect: 10s
  data_accept: 10s
  shutdown_grace: 5s
log:
  level: debug
  format: json
`, gwAddr, byName, vsA.CAFile, vsA.PasvLo, vsA.PasvHi, health, vsB.Addr, vsB.CAFile, health,
		vsA.PasvLo, vsA.PasvHi, // the gateway's passive range: the DMZ's, vsftpd A's numbers
		agentPort, gwFiles.ChainFile, gwFiles.KeyFile, pins["a1"], pins["a2"], pins["b1"], sock)
	gwDir := t.TempDir()
	gwPath := writeConfig(t, gwDir, gwConf)
	gw := startProcess(t, "ftpsgate(dmz)", filepath.Join(gwDir, "ftpsgate.log"), inNetns(h.DMZ, bin, "run", "--config", gwPath)...)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	waitForPortIn(wctx, t, h.DMZ, gwAddr, gw)
	admin := newAdminClient(sock)
	agents := map[string]*process{}
	diag := func() string {
		s := gw.LogTail() + "\n" + vsA.diagnostics() + "\n" + vsB.diagnostics()
		for _, p := range agents {
			s += "\n" + p.LogTail()
		}
		return s
	}

	// The agents: a1 on host A beside vsftpd A, a2 on host B across the
	// LAN (both reach files-a), b1 on host B beside vsftpd B.
	type agentDef struct{ ns, gateway, group, allow string }
	defs := map[string]agentDef{
		"a1": {h.A, h.DMZForA, "lan", fmt.Sprintf(`["%s", "%s:%d-%d"]`, byName, h.ALAN, vsA.PasvLo, vsA.PasvHi)},
		"a2": {h.B, h.DMZForB, "lan", fmt.Sprintf(`["%s", "%s:%d-%d"]`, byName, h.ALAN, vsA.PasvLo, vsA.PasvHi)},
		"b1": {h.B, h.DMZForB, "site-b", fmt.Sprintf(`["%s", "127.0.0.1:%d"]`, vsB.Addr, gwPort)},
	}
	runs := 0
	startAgent := func(name string) {
		d := defs[name]
		conf := fmt.Sprintf(`gateways: ["%s:%d"]
group: %s
name: %s
cert_file: %s
key_file: %s
gateway_pins: [%q]
allow: %s
keepalive: 5s
backoff: {min: 200ms, max: 1s}
shutdown_grace: 10s
log: {level: info, format: json}
`, d.gateway, agentPort, d.group, name, certs[name][0], certs[name][1], gwPin, d.allow)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		runs++
		agents[name] = startProcess(t, name, filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, runs)), inNetns(d.ns, bin, "agent", "--config", path)...)
	}
	for _, name := range []string{"a1", "a2", "b1"} {
		startAgent(name)
	}
	waitLogCount(ctx, t, gw, `"agent connected"`, 3)

	// waitFor polls cond for up to d.
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s\n%s", what, d, diag())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	upIs := func(backend, want string) func() bool {
		return func() bool { return admin.backendUp(backend) == want }
	}
	ready := func(want int) func() bool {
		return func() bool { code, _ := admin.get("/readyz"); return code == want }
	}
	waitFor("files-a up", 15*time.Second, upIs("files-a", "1"))
	waitFor("files-b up", 15*time.Second, upIs("files-b", "1"))
	waitFor("/readyz 200", 5*time.Second, ready(http.StatusOK))

	// A file of 8 MiB every client moves, and one on both servers for the
	// downloads that get cut.
	src := filepath.Join(dir, "src.bin")
	sum, err := testproc.RandomFile(src, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.bin")
	if _, err := testproc.RandomFile(big, 24<<20); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{vsA.Root, vsB.Root} {
		b, _ := os.ReadFile(big)
		if err := os.WriteFile(filepath.Join(root, "big.bin"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := newDir(t, "agent-hosts-local-", 0o755)
	curl := func(pasv bool, args ...string) (string, error) {
		c := curlClient{Addr: gwAddr, TLS: tlsExplicit, PASV: pasv, User: u.Name, Password: u.Password}
		return nsRun(ctx, h.DMZ, append([]string{"curl"}, append(c.args(), args...)...)...)
	}
	curlURL := func(name string) string { return "ftp://" + gwAddr + "/" + name }
	// roundTrip uploads src as name (in a session of its own) and checks
	// it on the member the pool sent it to.
	roundTrip := func(what, name string, pasv bool) {
		t.Helper()
		if out, err := curl(pasv, "-T", src, curlURL(name)); err != nil {
			t.Fatalf("%s: curl upload: %v\n%s\n%s", what, err, tail("curl", out, 3000), diag())
		}
		onA, onB := filepath.Join(vsA.Root, name), filepath.Join(vsB.Root, name)
		if _, err := os.Stat(onA); err == nil {
			assertSameFile(t, what+" upload (vsftpd A)", onA, sum, 8<<20)
		} else {
			assertSameFile(t, what+" upload (vsftpd B)", onB, sum, 8<<20)
		}
	}
	ftplibScript := filepath.Join(dir, "ftplib_hosts.py")
	if err := os.WriteFile(ftplibScript, []byte(ftplibHostsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ftplib := func(op, localPath, remote string, slow bool) (string, error) {
		host, port, _ := strings.Cut(gwAddr, ":")
		return nsRun(ctx, h.DMZ, systemPython, ftplibScript, host, port, u.Name, u.Password, op, localPath, remote, fmt.Sprint(slow))
	}

	// 1. Everything up: both members, every client, PASV and EPSV.
	for i := range 4 {
		pasv := i%2 == 1
		roundTrip(fmt.Sprintf("session %d (pasv %t)", i, pasv), fmt.Sprintf("curl-%d.bin", i), pasv)
		got := filepath.Join(local, fmt.Sprintf("curl-%d.bin", i))
		if out, err := curl(pasv, "-o", got, curlURL("big.bin")); err != nil {
			t.Fatalf("curl download %d: %v\n%s\n%s", i, err, tail("curl", out, 3000), diag())
		}
		assertSameFile(t, fmt.Sprintf("curl download %d", i), got, sha256File(t, big), 24<<20)
	}
	for i, epsv := range []bool{true, false} {
		got := filepath.Join(local, fmt.Sprintf("lftp-%d.bin", i))
		if out, err := lftpNetns(ctx, t, h.DMZ, dir, gwAddr, u, epsv, fmt.Sprintf("get big.bin -o %s", lftpQuote(got))); err != nil {
			t.Fatalf("lftp (epsv %t): %v\n%s\n%s", epsv, err, tail("lftp", out, 3000), diag())
		}
		assertSameFile(t, "lftp download", got, sha256File(t, big), 24<<20)
	}
	for i := range 2 {
		got := filepath.Join(local, fmt.Sprintf("ftplib-%d.bin", i))
		if out, err := ftplib("get", got, "big.bin", false); err != nil {
			t.Fatalf("ftplib download %d: %v\n%s\n%s", i, err, tail("ftplib", out, 3000), diag())
		}
		assertSameFile(t, "ftplib download", got, sha256File(t, big), 24<<20)
	}
	for name, p := range agents {
		if !strings.Contains(p.Log(), `"stream ended"`) {
			t.Errorf("agent %s carried no stream\n%s", name, p.LogTail())
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. site-b loses its only agent: files-b goes down, the gateway stays
	// ready, sessions go to files-a.
	if err := agents["b1"].Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor("files-b down after its agent died", 10*time.Second, upIs("files-b", "0"))
	if _, body := admin.get("/v1/backends"); !strings.Contains(body, `"name":"files-b"`) || !strings.Contains(body, `"state":"down"`) {
		t.Errorf("/v1/backends does not show files-b down:\n%s", body)
	}
	if code, body := admin.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with files-a up: %d %s", code, body)
	}
	for i := range 3 {
		roundTrip(fmt.Sprintf("session %d without site-b", i), fmt.Sprintf("no-b-%d.bin", i), i%2 == 0)
		if _, err := os.Stat(filepath.Join(vsB.Root, fmt.Sprintf("no-b-%d.bin", i))); err == nil {
			t.Errorf("a session went to files-b, which is down")
		}
	}

	// 3. files-a on a2 alone (across the LAN), then on none.
	if err := agents["a1"].Kill(); err != nil {
		t.Fatal(err)
	}
	waitLogCount(ctx, t, gw, `"agent disconnected"`, 2)
	for i := range 2 {
		roundTrip(fmt.Sprintf("session %d through a2 only", i), fmt.Sprintf("a2-%d.bin", i), i%2 == 0)
	}
	if up := admin.backendUp("files-a"); up != "1" {
		t.Errorf("files-a with a2 connected: backend_up %q", up)
	}
	if err := agents["a2"].Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor("files-a down after both its agents died", 10*time.Second, upIs("files-a", "0"))
	waitFor("/readyz 503", 5*time.Second, ready(http.StatusServiceUnavailable))
	if out, err := curl(false, "-o", filepath.Join(local, "none.bin"), curlURL("big.bin")); err == nil || !strings.Contains(out, "< 421") {
		t.Errorf("a session with no agent up: curl %v, want a 421\n%s", err, tail("curl", out, 2000))
	}

	// 4. The agents come back: the backends rise, new sessions work.
	for _, name := range []string{"a1", "b1"} {
		startAgent(name)
	}
	waitFor("files-a up again", 15*time.Second, upIs("files-a", "1"))
	waitFor("files-b up again", 15*time.Second, upIs("files-b", "1"))
	waitFor("/readyz 200 again", 5*time.Second, ready(http.StatusOK))
	for i := range 2 {
		roundTrip(fmt.Sprintf("session %d after the restart", i), fmt.Sprintf("back-%d.bin", i), i%2 == 1)
	}

	// 5. Agents killed in the middle of transfers: a download (curl,
	// 2 MB/s) and an upload (ftplib, slowed); both clients must fail, none
	// may see a complete transfer.
	type run struct {
		name string
		wait func() (string, error)
	}
	start := func(name string, argv ...string) run {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.DMZ}, argv...)...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return run{name, func() (string, error) { err := cmd.Wait(); return out.String(), err }}
	}
	c := curlClient{Addr: gwAddr, TLS: tlsExplicit, User: u.Name, Password: u.Password}
	cutCurl := filepath.Join(local, "cut-curl.bin")
	host, port, _ := strings.Cut(gwAddr, ":")
	runs5 := []run{
		start("curl download", append(append([]string{"curl"}, c.args()...), "--limit-rate", "2M", "-o", cutCurl, curlURL("big.bin"))...),
		start("ftplib upload", systemPython, ftplibScript, host, port, u.Name, u.Password, "put", big, "cut-up.bin", "True"),
	}
	time.Sleep(1500 * time.Millisecond)
	for _, name := range []string{"a1", "b1"} {
		if err := agents[name].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs5 {
		out, err := r.wait()
		if err == nil {
			t.Errorf("%s through an agent killed mid-transfer succeeded:\n%s", r.name, tail(r.name, out, 3000))
		} else {
			t.Logf("%s: %v (%s)", r.name, err, lastLines(out, 2))
		}
	}
	if st, err := os.Stat(cutCurl); err == nil && st.Size() >= 24<<20 {
		t.Errorf("curl got all of big.bin though its agent was killed mid-transfer")
	}

	// 6. An agent that drains (SIGTERM) keeps connecting the data
	// connections of the sessions it carries (from its own host, as the
	// server wants them) until they end or shutdown_grace does: an lftp
	// session downloads, its agent is told to stop, and it downloads again.
	for _, name := range []string{"a1", "b1"} {
		startAgent(name)
	}
	waitFor("files-a up for the drain", 15*time.Second, upIs("files-a", "1"))
	waitFor("files-b up for the drain", 15*time.Second, upIs("files-b", "1"))
	mark := filepath.Join(local, "first-done")
	got1, got2 := filepath.Join(local, "drain-1.bin"), filepath.Join(local, "drain-2.bin")
	lftpDone := make(chan error, 1)
	var lftpOut string
	go func() {
		out, err := lftpNetns(ctx, t, h.DMZ, dir, gwAddr, u, true, fmt.Sprintf("get big.bin -o %s\n!touch %s\n!sleep 3\nget big.bin -o %s",
			lftpQuote(got1), lftpQuote(mark), lftpQuote(got2)))
		lftpOut = out
		lftpDone <- err
	}()
	waitFor("the first download of the draining session", 20*time.Second, func() bool { _, err := os.Stat(mark); return err == nil })
	for _, name := range []string{"a1", "b1"} {
		if err := agents[name].Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-lftpDone; err != nil {
		t.Fatalf("a session on a draining agent: %v\n%s\n%s\n%s\n%s", err, tail("lftp", lftpOut, 3000), agents["a1"].LogTail(), agents["b1"].LogTail(), diag())
	}
	assertSameFile(t, "the download before the drain", got1, sha256File(t, big), 24<<20)
	assertSameFile(t, "the download during the drain", got2, sha256File(t, big), 24<<20)
	for _, name := range []string{"a1", "b1"} {
		if _, ok := agents[name].WaitExit(15 * time.Second); !ok {
			t.Fatalf("%s did not exit after its drain", name)
		}
	}

	// 7. Host A's link to the DMZ goes silent (no FIN, no RST: a cable
	// pulled, a host frozen): a1 is set aside at the first stream request it
	// leaves unanswered, sessions go through a2 (across the LAN) without
	// waiting for the keepalive (15 s), and files-a stays up.
	connected := strings.Count(gw.Log(), `"agent connected"`)
	for _, name := range []string{"a1", "a2", "b1"} {
		startAgent(name)
	}
	waitLogCount(ctx, t, gw, `"agent connected"`, connected+3)
	waitFor("files-a up before the silence", 15*time.Second, upIs("files-a", "1"))
	waitFor("files-b up before the silence", 15*time.Second, upIs("files-b", "1"))
	for _, chain := range []string{"input ip saddr", "output ip daddr"} {
		if out, err := nsRun(ctx, h.A, strings.Fields("nft insert rule inet ftpsgate_test "+chain+" "+h.DMZForA+" drop")...); err != nil {
			t.Fatalf("silencing host A: %v: %s", err, out)
		}
	}
	for i := range 4 {
		got := filepath.Join(local, fmt.Sprintf("silent-%d.bin", i))
		start := time.Now()
		if out, err := curl(false, "-o", got, curlURL("big.bin")); err != nil {
			t.Fatalf("session %d while host A is silent: %v after %v\n%s\n%s", i, err, time.Since(start), tail("curl", out, 3000), diag())
		}
		assertSameFile(t, fmt.Sprintf("download %d while host A is silent", i), got, sha256File(t, big), 24<<20)
	}
	waitLogCount(ctx, t, gw, `agent set aside: silent after a stream request`, 1)
	if up := admin.backendUp("files-a"); up != "1" {
		t.Errorf("files-a, which a2 reaches, is down while a1 is silent: %q", up)
	}
}

// ftplibHostsScript: ftplib_hosts.py HOST PORT USER PASSWORD get|put LOCAL
// REMOTE SLOW. Explicit FTPS, PROT P, data connections resuming the control
// session; SLOW reads the upload in 64 KiB pieces 50 ms apart.
const ftplibHostsScript = `import ftplib, ssl, sys, time
host, port, user, pw, op, local, remote, slow = sys.argv[1:9]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
class C(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
class Slow:
    def __init__(self, f): self.f = f
    def read(self, n):
        time.sleep(0.05)
        return self.f.read(65536)
c = C(context=ctx, timeout=30)
c.connect(host, int(port))
c.login(user, pw)
c.prot_p()
if op == "get":
    with open(local, "wb") as f:
        print(c.retrbinary("RETR " + remote, f.write))
else:
    with open(local, "rb") as f:
        print(c.storbinary("STOR " + remote, Slow(f) if slow == "True" else f, 65536))
c.quit()
print("ok")
`
