package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// hashFixture is a file of a few hundred KiB and its SHA-256.
func hashFixture() ([]byte, string) {
	data := bytes.Repeat([]byte("ftpsgate HASH fixture\n"), 20000)
	s := sha256.Sum256(data)
	return data, hex.EncodeToString(s[:])
}

// TestHashRelayedProFTPD: ProFTPD with mod_digest answers HASH itself;
// the gateway selects SHA-256 there (ProFTPD's default is SHA-1) and
// relays its reply, which equals the local SHA-256 of the file.
func TestHashRelayedProFTPD(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)
	if _, err := os.Stat(filepath.Join(unpackDir, "proftpd-core", "usr/lib/proftpd", "mod_digest.so")); err != nil {
		t.Skipf("no mod_digest.so: %v", err)
	}
	srv := startProftpd(ctx, t, tlsExplicit, "LoadModule mod_digest.c")
	data, want := hashFixture()
	srv.putFile(t, "hashed file.bin", data)
	cfg := newGatewayConfig(t, srv.Addr, tlsExplicit, srv.CAFile)
	gw := startGateway(ctx, t, cfg)

	c := dialFTP(t, cfg.ImplicitAddr, true)
	c.expect(wire.StatusReady)
	c.do("USER "+srv.User.Name, wire.StatusUserOK)
	c.do("PASS "+srv.User.Password, wire.StatusLoggedIn)
	feat := c.do("FEAT", wire.StatusSystemStatus)
	if !strings.Contains(feat.Text(), "HASH SHA-256*") {
		t.Errorf("FEAT lacks HASH SHA-256*: %q", feat.Lines)
	}
	rep := c.do("HASH hashed file.bin", 0)
	last := rep.Lines[len(rep.Lines)-1]
	if rep.Code != wire.StatusFileStatus || !strings.HasSuffix(last, fmt.Sprintf("SHA-256 0-%d %s hashed file.bin", len(data), want)) {
		t.Errorf("HASH through the gateway: %d %q, want SHA-256 0-%d %s\n%s\n%s", rep.Code, rep.Lines, len(data), want, gw.diagnostics(), srv.diagnostics())
	}
	if !strings.Contains(rep.Text(), "Computing") {
		t.Errorf("the reply is not ProFTPD's (not relayed?): %q", rep.Lines)
	}
	c.do("NOOP", wire.StatusCommandOK)
	c.do("QUIT", 0)
	gw.assertLogOmits(t, srv.User.Password)
}

// hashClientScript is Python's ftplib asking HASH and XSHA256 through
// FTP_TLS (explicit), the way a partner's script verifies an upload.
const hashClientScript = `
import ftplib, json, ssl, sys
spec = json.load(open(sys.argv[1]))
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE  # the gateway serves a generated certificate
class Client(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        # Resume the control session on the data connection (the gateway's
        # data_session_reuse), the fix stock ftplib lacks.
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
f = Client(context=ctx, timeout=30)
f.connect(spec["host"], spec["port"])
f.login(spec["user"], spec["password"])
f.prot_p()
with open(spec["src"], "rb") as fh:
    f.storbinary("STOR " + spec["name"], fh)
print(f.sendcmd("HASH " + spec["name"]))
print(f.sendcmd("XSHA256 " + spec["name"]))
f.quit()
`

// TestHashFtplibVsftpd: vsftpd has no HASH, so the gateway reads the file
// back from vsftpd (TLS data, session reuse required there) and hashes it;
// Python's ftplib uploads a file and checks HASH and XSHA256 against it.
func TestHashFtplibVsftpd(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)
	srv := startServer(ctx, t, backendSpec{kindVsftpd, tlsExplicit})
	cfg := newGatewayConfig(t, srv.Addr, tlsExplicit, srv.CAFile)
	gw := startGateway(ctx, t, cfg)

	data, want := hashFixture()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := hostPort(t, cfg.ExplicitAddr)
	spec, _ := json.Marshal(map[string]any{"host": host, "port": port, "user": srv.User.Name, "password": srv.User.Password, "src": src, "name": "partner upload.bin"})
	specPath := filepath.Join(dir, "spec.json")
	script := filepath.Join(dir, "hash_client.py")
	if err := os.WriteFile(specPath, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte(hashClientScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, systemPython, script, specPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ftplib: %v\n%s\n%s", err, out, gw.diagnostics())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	wantHash := fmt.Sprintf("213 SHA-256 0-%d %s partner upload.bin", len(data), want)
	if len(lines) != 2 || lines[0] != wantHash || lines[1] != "250 "+strings.ToUpper(want) {
		t.Errorf("ftplib got %q, want %q and 250 %s\n%s", lines, wantHash, strings.ToUpper(want), gw.diagnostics())
	}
	gw.assertLogOmits(t, srv.User.Password)
}
