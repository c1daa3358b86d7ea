package interop

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRoutingByUserVsftpdPyftpdlib: one gateway in front of two real
// servers, vsftpd (explicit FTPS with require_ssl_reuse, health-checked
// with AUTH TLS and a probe login through PAM) and pyftpdlib (plain,
// health-checked by its banner). The vsftpd account is routed to vsftpd by
// a users rule; another account, known only to pyftpdlib, goes to the
// default. Each upload lands on its own server's disk and nowhere else;
// neither password reaches the log. Take /tmp/vsftpd.lock around it (the
// PAM account is shared with other runs).
func TestRoutingByUserVsftpdPyftpdlib(t *testing.T) {
	requireInterop(t)
	results.record(t)
	ctx := testContext(t, 2*time.Minute)

	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	pyRoot := newDir(t, "pyrouted-", 0o755)
	pyAcct := ftpAccount{Name: "routed-py", Password: "Routed-" + hex.EncodeToString(rnd[:])}
	t.Setenv("PYFTPD_EXTRA_USERS", pyAcct.Name+"\t"+pyAcct.Password+"\t"+pyRoot)
	py := startPyftpdlib(ctx, t, tlsNone)
	v := startVsftpd(ctx, t, tlsExplicit)

	dir := t.TempDir()
	probePass := filepath.Join(dir, "probe.pass")
	if err := os.WriteFile(probePass, []byte(v.User.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := newGatewayConfig(t, v.Addr, tlsExplicit, v.CAFile)
	yaml := cfg.YAML()
	single := fmt.Sprintf("backend:\n  address: %s\n  tls: %s\n  ca_file: %q\n  server_name: \"\"\n  insecure_skip_verify: false\n", v.Addr, tlsExplicit, v.CAFile)
	if !strings.Contains(yaml, single) {
		t.Fatalf("the harness's backend section changed:\n%s", yaml)
	}
	yaml = strings.Replace(yaml, single, fmt.Sprintf(`backends:
  - name: vsftpd
    address: %s
    tls: explicit
    ca_file: %q
    health: {interval: 2s, tls: true, user: %s, password_file: %q}
  - name: pyftpdlib
    address: %s
    health: {interval: 2s}
routing:
  default: pyftpdlib
  rules:
    - {users: [%s], target: vsftpd}
`, v.Addr, v.CAFile, v.User.Name, probePass, py.Addr, v.User.Name), 1)

	bin := gatewayBinary(t)
	gw := &gateway{Config: cfg, ConfigPath: writeConfig(t, dir, yaml)}
	gw.proc = startProcess(t, "ftpsgate", filepath.Join(dir, "ftpsgate.log"), bin, "run", "--config", gw.ConfigPath)
	waitForPort(ctx, t, cfg.ExplicitAddr, gw.proc)

	src := filepath.Join(dir, "src.bin")
	if err := randomFile(src, 1<<20); err != nil {
		t.Fatal(err)
	}
	want := fileSum(src)
	for _, tc := range []struct {
		acct       ftpAccount
		root, away string
	}{
		{v.User, v.Root, pyRoot},
		{pyAcct, pyRoot, v.Root},
	} {
		c := gw.client(tlsExplicit, false, tc.acct)
		name := "routed-" + tc.acct.Name + ".bin"
		if run := c.upload(ctx, t, src, name); run.Err != nil {
			t.Fatalf("upload as %s: %v\n%s\n%s", tc.acct.Name, run.Err, run, gw.diagnostics())
		}
		if got := fileSum(filepath.Join(tc.root, name)); got != want {
			t.Errorf("%s: the upload on its server's disk has sum %s, want %s", tc.acct.Name, got, want)
		}
		if _, err := os.Stat(filepath.Join(tc.away, name)); err == nil {
			t.Errorf("%s: the upload reached the other server too", tc.acct.Name)
		}
	}
	log := gw.proc.Log()
	for _, want := range []string{`"backend":"vsftpd","address":"` + v.Addr + `"`, `"backend":"pyftpdlib","address":"` + py.Addr + `"`} {
		up := false
		for _, line := range strings.Split(log, "\n") {
			up = up || strings.Contains(line, want) && strings.Contains(line, `"message":"backend up"`)
		}
		if !up {
			t.Errorf("the log has no \"backend up\" line with %s\n%s", want, gw.diagnostics())
		}
	}
	gw.assertLogOmits(t, v.User.Password, pyAcct.Password)
}
