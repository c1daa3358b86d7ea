package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// startAudited starts a gateway whose events go to an audit trail with a
// file sink in dir; the trail is closed after the gateway.
func startAudited(t *testing.T, dir string, required bool, opts ...option) (*gateway, *audit.Trail, string) {
	t.Helper()
	path := filepath.Join(dir, "audit.jsonl")
	f, err := audit.OpenFile(audit.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	trail := audit.NewTrail(audit.TrailConfig{Instance: "e2e", Log: zerolog.Nop()}, f)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := trail.Close(ctx); err != nil {
			t.Errorf("audit trail: %v", err)
		}
	})
	deps := []proxy.Option{proxy.WithEvents(trail)}
	if required {
		deps = append(deps, proxy.WithGate(trail))
	}
	return startGatewayWith(t, deps, opts...), trail, path
}

// readRecords reads the audit file.
func readRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, audit.MaxLine)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// describe is a record's kind and what tells it apart in a session.
func describe(r audit.Record) string {
	switch {
	case r.Command != nil:
		return "command " + r.Command.Text
	case r.Login != nil:
		return "login " + r.Login.Result
	case r.Transfer != nil:
		return "transfer " + r.Transfer.Verb
	}
	return r.Kind
}

// TestAuditSession is the acceptance test of the audit trail: a session
// with a failed login, a login, a listing, an upload, a download and a
// resumed download (REST) produces exactly the expected records, in order,
// with their fields; the SHA-256 values are those of the files on the
// backend's disk; no record holds a password; the chain verifies.
func TestAuditSession(t *testing.T) {
	g, _, path := startAudited(t, t.TempDir(), false, func(c *proxy.Config) { c.Hash = proxy.HashAll })
	content := randomBytes(t, 100<<10)
	if err := os.WriteFile(filepath.Join(g.root, "file.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	up := randomBytes(t, 5000)

	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS wrong-Pa55word", wire.StatusNotLoggedIn)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)

	get := func(cmd string) []byte {
		t.Helper()
		data := c.tlsData(c.dataConn(c.epsv(), ""))
		if rest, ok := strings.CutPrefix(cmd, "REST "); ok {
			c.do("REST "+strings.Fields(rest)[0], wire.StatusFileActionPending)
			cmd = strings.SplitN(rest, " ", 2)[1]
		}
		c.send(cmd)
		c.expect(wire.StatusAboutToSend)
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(data)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		data.Close()
		c.expect(wire.StatusClosingDataConnection)
		return b
	}
	get("LIST")
	data := c.tlsData(c.dataConn(c.epsv(), ""))
	c.send("STOR up.bin")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := data.Close(); err != nil {
		t.Fatal(err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if got := get("RETR file.bin"); !bytes.Equal(got, content) {
		t.Fatal("download differs")
	}
	if got := get("REST 60000 RETR file.bin"); !bytes.Equal(got, content[60000:]) {
		t.Fatal("resumed download differs")
	}
	c.do("QUIT", wire.StatusClosing)
	c.conn.Close()

	var recs []audit.Record
	waitLong(t, func() bool {
		recs = readRecords(t, path)
		return len(recs) > 0 && recs[len(recs)-1].Kind == audit.KindSessionEnd
	}, "the session_end record")

	var got []string
	for _, r := range recs {
		got = append(got, describe(r))
	}
	want := []string{
		"session_start",
		"command AUTH TLS", "command PBSZ 0", "command PROT P",
		"command USER " + user, "login failed", "command PASS ****",
		"command USER " + user, "login ok", "command PASS ****",
		"command EPSV", "transfer LIST", "command LIST",
		"command EPSV", "transfer STOR", "command STOR up.bin",
		"command EPSV", "transfer RETR", "command RETR file.bin",
		"command EPSV", "command REST 60000", "transfer RETR", "command RETR file.bin",
		"command QUIT",
		"session_end",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Every record: the schema version, a unique ID, a UTC time, the session.
	ids := map[string]bool{}
	sid := recs[0].Session
	for i, r := range recs {
		if r.V != audit.SchemaVersion || ids[r.ID] || !strings.HasPrefix(r.ID, "e2e-") || r.Time.Location() != time.UTC ||
			r.Session != sid || sid == "" || r.Listener != "explicit" || !strings.HasPrefix(r.Client, "127.0.0.1:") {
			t.Errorf("record %d (%s): v %d id %q time %v session %q listener %q client %q", i, got[i], r.V, r.ID, r.Time, r.Session, r.Listener, r.Client)
		}
		ids[r.ID] = true
		if i > 8 && r.User != user {
			t.Errorf("record %d (%s): user %q after login", i, got[i], r.User)
		}
	}
	if s := recs[0].SessionStart; s == nil || s.LocalAddr != g.addr("explicit") {
		t.Errorf("session_start: %+v", s)
	}
	if l := recs[5].Login; l.Code != 530 || recs[5].User != user || l.Reason == "" {
		t.Errorf("failed login: %+v user %q", l, recs[5].User)
	}
	if l := recs[8].Login; l.Code != 230 || l.Result != "ok" {
		t.Errorf("login: %+v", l)
	}
	if c := recs[6].Command; c.Code != 530 || c.Verb != "PASS" {
		t.Errorf("failed PASS: %+v", c)
	}

	onDisk := readFile(t, filepath.Join(g.root, "up.bin"))
	if !bytes.Equal(onDisk, up) {
		t.Fatal("the upload on the backend's disk differs")
	}
	type xfer struct {
		rec                          int
		verb, dir, path, sha, offset string
		bytes, size                  int64
	}
	for _, x := range []xfer{
		{rec: 11, verb: "LIST", dir: "download"},
		{rec: 14, verb: "STOR", dir: "upload", path: "up.bin", sha: sum(onDisk), bytes: 5000, size: 5000},
		{rec: 17, verb: "RETR", dir: "download", path: "file.bin", sha: sum(readFile(t, filepath.Join(g.root, "file.bin"))), bytes: int64(len(content)), size: int64(len(content))},
		{rec: 21, verb: "RETR", dir: "download", path: "file.bin", sha: sum(readFile(t, filepath.Join(g.root, "file.bin"))[60000:]), offset: "60000",
			bytes: int64(len(content) - 60000), size: int64(len(content) - 60000)},
	} {
		tr := recs[x.rec].Transfer
		if tr.Verb != x.verb || tr.Direction != x.dir || tr.Path != x.path || tr.BackendPath != x.path || tr.SHA256 != x.sha ||
			tr.Offset != x.offset || tr.Size != x.size || !tr.Complete || tr.Code != 226 || !tr.Protected || tr.Error != "" {
			t.Errorf("transfer %s: %+v", x.verb, tr)
		}
		if x.verb != "LIST" && tr.Bytes != x.bytes {
			t.Errorf("transfer %s: %d bytes, want %d", x.verb, tr.Bytes, x.bytes)
		}
	}
	end := recs[len(recs)-1].SessionEnd
	if end.TLSVersion != "TLS 1.3" || end.TLSSuite == "" || end.BytesUp != 5000 || end.BytesDown < 2*int64(len(content))-60000 || end.Reason == "" {
		t.Errorf("session_end: %+v", end)
	}

	raw := string(readFile(t, path))
	for _, secret := range []string{password, "wrong-Pa55word"} {
		if strings.Contains(raw, secret) {
			t.Errorf("a password is in the audit file")
		}
	}
	if _, err := audit.Verify([]string{path}, nil); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// waitLong is waitFor with 15 s: a session's end may wait for its TLS
// close_notify (up to 5 s).
func waitLong(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// greeting connects and returns the first reply's code (0: none).
func greeting(t *testing.T, addr string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	rep, err := wire.NewReader(conn).ReadReply()
	if err != nil {
		return 0
	}
	if _, err := fmt.Fprint(conn, "QUIT\r\n"); err == nil && rep.Code == wire.StatusReady {
		_, _ = wire.NewReader(conn).ReadReply()
	}
	return rep.Code
}

// TestAuditRequired: with audit.required, a file sink whose directory
// cannot be written refuses new sessions with 421 (and a log line), and
// admits them again once it can. The directory is made read-only; root
// writes there anyway, so as root it is moved away instead (the gate
// probes by creating a file in it).
func TestAuditRequired(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "audit")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	g, _, _ := startAudited(t, dir, true)
	addr := g.addr("explicit")
	if code := greeting(t, addr); code != wire.StatusReady {
		t.Fatalf("greeting with a writable trail: %d", code)
	}
	// A session admitted before goes on through the outage.
	c := dialRaw(t, addr, false)
	c.login(false)

	breakDir, mendDir := func() { os.Chmod(dir, 0o500) }, func() { os.Chmod(dir, 0o700) }
	if os.Geteuid() == 0 {
		breakDir = func() {
			if err := os.Rename(dir, dir+".away"); err != nil {
				t.Fatal(err)
			}
		}
		mendDir = func() {
			if err := os.Rename(dir+".away", dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	breakDir()
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	waitFor(t, func() bool { return greeting(t, addr) == wire.StatusNotAvailable }, "421 while the trail cannot be written")
	if !strings.Contains(g.logs.String(), "session refused: the gate is closed") {
		t.Error("no log line for the refusal")
	}
	c.do("NOOP", wire.StatusCommandOK)

	mendDir()
	waitFor(t, func() bool { return greeting(t, addr) == wire.StatusReady }, "220 once the trail can be written again")
	c.do("QUIT", wire.StatusClosing)
}

// TestAuditClientCertificate: the session_end record names the client
// certificate of the control connection (subject and SHA-256 of its DER).
func TestAuditClientCertificate(t *testing.T) {
	ca := newTestCA(t)
	g, _, path := startAudited(t, t.TempDir(), false, func(c *proxy.Config) {
		c.TLS.ClientAuth = policy.ClientAuthRequire
		c.TLS.ClientCAFile = ca.pemFile
		c.TLS.ClientCertUser = policy.CertUserCN
	})
	cert := ca.issue(t, user, true)
	cfg := clientTLS()
	cfg.Certificates = []tls.Certificate{cert.tls}
	conn, err := tls.Dial("tcp", g.addr("implicit"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, r: wire.NewReader(conn)}
	defer conn.Close()
	c.expect(wire.StatusReady)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
	c.do("QUIT", wire.StatusClosing)
	var end *audit.SessionEnd
	waitLong(t, func() bool {
		recs := readRecords(t, path)
		if n := len(recs); n > 0 && recs[n-1].Kind == audit.KindSessionEnd {
			end = recs[n-1].SessionEnd
		}
		return end != nil
	}, "the session_end record")
	if end.CertSubject != cert.x509.Subject.String() || end.CertSHA256 != sum(cert.x509.Raw) || end.CertSubject == "" {
		t.Fatalf("session_end: subject %q sha256 %q; want %q %q", end.CertSubject, end.CertSHA256, cert.x509.Subject, sum(cert.x509.Raw))
	}
}

// TestAuditConfinedPaths: a confined session's transfer record has the
// path the client named and the backend path it became.
func TestAuditConfinedPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	f, err := audit.OpenFile(audit.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	trail := audit.NewTrail(audit.TrailConfig{Log: zerolog.Nop()}, f)
	t.Cleanup(func() { _ = trail.Close(context.Background()) })
	g := startConfinedWith(t, confinedAccess, []proxy.Option{proxy.WithEvents(trail)})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	data := c.tlsData(c.dataConn(c.epsv(), ""))
	c.send("STOR /in.txt")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	data.Close()
	c.expect(wire.StatusClosingDataConnection)
	var tr *audit.Transfer
	waitLong(t, func() bool {
		for _, r := range readRecords(t, path) {
			if r.Transfer != nil {
				tr = r.Transfer
			}
		}
		return tr != nil
	}, "the transfer record")
	if tr.Path != "/in.txt" || tr.BackendPath != "/partners/"+user+"/in.txt" || tr.SHA256 != sum([]byte("hello")) {
		t.Fatalf("transfer: %+v", tr)
	}
}
