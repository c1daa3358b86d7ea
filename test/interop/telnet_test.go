package interop

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// telnetAnonymous is USER anonymous in disguise: the client escapes one
// 0xFF as IAC IAC, so the line holds 0xFF 0xF4 after Telnet processing.
// A gateway that forwarded that (forwarded) would have ProFTPD read IAC IP
// and remove it.
const (
	telnetAnonymous = "USER anonymou\xff\xff\xf4s"
	forwarded       = "USER anonymou\xff\xf4s"
)

// TestTelnetAnonymousProFTPD: with policy.allow_anonymous false, the
// disguised USER anonymous gets 500 from the gateway, and ProFTPD, which
// serves anonymous logins, never logs anyone in as anonymous. Sent straight
// to ProFTPD, what the gateway used to forward (0xFF 0xF4 raw) does log in
// anonymously: the test's premise.
func TestTelnetAnonymousProFTPD(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)

	acct := account(t)
	anonDir := newDir(t, "proftpd-anon-", 0o755)
	t.Cleanup(func() { os.RemoveAll(anonDir) })
	groupFile := filepath.Join(anonDir, "..", filepath.Base(anonDir)+".group")
	t.Cleanup(func() { os.Remove(groupFile) })
	if err := os.WriteFile(groupFile, fmt.Appendf(nil, "ftpanon:x:%d:\n", acct.GID), 0o644); err != nil {
		t.Fatal(err)
	}
	authLog := filepath.Join(anonDir, "..", filepath.Base(anonDir)+".auth.log")
	t.Cleanup(func() { os.Remove(authLog) })
	srv := startProftpd(ctx, t, tlsNone,
		`LogFormat logins "%u %a %s %r"`,
		"ExtendedLog "+authLog+" AUTH logins",
		"AuthGroupFile "+groupFile,
		"<Anonymous "+anonDir+">",
		"  User "+acct.Name,
		"  Group ftpanon",
		"  UserAlias anonymous "+acct.Name,
		"  RequireValidShell off",
		"</Anonymous>",
	)
	srv.logs = append(srv.logs, authLog)

	// Straight to ProFTPD: the line the gateway used to forward is anonymous there.
	direct := dialFTP(t, srv.Addr, false)
	direct.expect(wire.StatusReady)
	direct.do(forwarded, wire.StatusUserOK)
	if rep := direct.do("PASS guest@example.com", 0); rep.Code != wire.StatusLoggedIn {
		t.Fatalf("premise: ProFTPD refused the anonymous login sent straight to it: %d %q\n%s", rep.Code, rep.Text(), srv.diagnostics())
	}
	direct.do("QUIT", 0)
	direct.conn.Close()
	time.Sleep(300 * time.Millisecond) // the session's last log lines
	before := fileSize(authLog)
	if log := readFrom(authLog, 0); !strings.Contains(log, "331 USER anonymous\n") || !strings.Contains(log, " 230 PASS") {
		t.Fatalf("premise: ProFTPD's log does not show the anonymous login\n%s", srv.diagnostics())
	}

	cfg := newGatewayConfig(t, srv.Addr, tlsNone, "")
	gw := startGateway(ctx, t, cfg)
	c := dialFTP(t, cfg.ImplicitAddr, true)
	c.expect(wire.StatusReady)
	if rep := c.do(telnetAnonymous, 0); rep.Code != wire.StatusSyntaxError {
		t.Errorf("the gateway answered %d %q to the disguised USER anonymous, want 500\n%s", rep.Code, rep.Text(), gw.diagnostics())
	}
	if rep := c.do("PASS guest@example.com", 0); rep.Code == wire.StatusLoggedIn {
		t.Errorf("logged in as anonymous through the gateway: %d %q", rep.Code, rep.Text())
	}
	c.do("QUIT", 0)
	c.conn.Close()
	// ProFTPD writes its log before it answers; give a late line a moment.
	time.Sleep(200 * time.Millisecond)
	if log := readFrom(authLog, before); strings.Contains(log, "anonymous") || strings.Contains(log, " 230 ") {
		t.Errorf("ProFTPD logged an anonymous session behind the gateway:\n%s", log)
	}
}

// ftpConn is a bare control connection for sending exact bytes.
type ftpConn struct {
	t    *testing.T
	conn net.Conn
	r    *wire.Reader
}

// dialFTP connects to addr, with implicit TLS (trusting any certificate:
// the gateway's is generated) if implicit.
func dialFTP(t *testing.T, addr string, implicit bool) *ftpConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // the gateway serves a generated certificate
		if err := tc.Handshake(); err != nil {
			conn.Close()
			t.Fatal(err)
		}
		conn = tc
	}
	t.Cleanup(func() { conn.Close() })
	return &ftpConn{t: t, conn: conn, r: wire.NewReader(conn)}
}

// expect reads a reply; code 0 takes any.
func (c *ftpConn) expect(code int) wire.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	rep, err := c.r.ReadReply()
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	if code != 0 && rep.Code != code {
		c.t.Fatalf("got %d %q, want %d", rep.Code, rep.Text(), code)
	}
	return rep
}

// do sends line and a CRLF, and reads the reply (see expect).
func (c *ftpConn) do(line string, code int) wire.Reply {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.expect(code)
}

// readFrom returns the file's content from offset on ("" if unreadable).
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}
