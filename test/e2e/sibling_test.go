package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// dialSibling opens an explicit-TLS control connection from the local address
// from ("" for any) with the client TLS config cfg, which sibling
// connections share (one session cache, as rclone has per host).
func dialSibling(t *testing.T, addr, from string, cfg *tls.Config) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot connect from %s: %v", from, err)
	}
	c := &rawClient{t: t, conn: conn, tls: cfg}
	t.Cleanup(func() { c.conn.Close() })
	c.r = wire.NewReader(conn)
	c.expect(wire.StatusReady)
	c.startTLS()
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	return c
}

func (c *rawClient) loginAs(name string) {
	c.t.Helper()
	c.do("USER "+name, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
}

// retr downloads name over a passive data connection from the local
// address from, with the client's TLS config (and so its session cache). It
// returns the data and the final reply code; the data connection's TLS
// state tells whether it resumed.
func (c *rawClient) retr(name, from string) (string, int, bool) {
	c.t.Helper()
	port := c.epsv()
	data := tls.Client(c.dataConn(port, from), c.tls)
	defer data.Close()
	c.send("RETR " + name)
	c.expect(wire.StatusAboutToSend)
	_ = data.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(data) // reading also stores the TLS 1.3 tickets in the shared cache
	resumed := data.ConnectionState().DidResume
	return string(got), c.read().Code, resumed
}

// TestSiblingSessionReuse is issue 12: rclone keeps several control
// connections and one TLS session cache per host, so a data connection
// resumes the TLS session of a sibling control connection. With the
// default data_session_reuse (user) that is accepted when the sibling is
// live and logged in as the same user from the same address; in session
// mode, for another user, from another address or after the sibling ended
// it is refused (431).
func TestSiblingSessionReuse(t *testing.T) {
	const payload = "sibling payload"
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 here it comes\r\n")
		ctrl.Flush()
		_, _ = data.Write([]byte(payload))
		data.Close()
		ctrl.WriteString("226 done\r\n")
		ctrl.Flush()
	})
	for _, tc := range []struct {
		name   string
		mode   policy.SessionReuse
		userB  string
		fromA  string // A's control and data connections' source address
		endA   bool   // A has quit before B's transfer
		slowA  bool   // A sends PASS only while B's data handshake waits
		accept bool
		reason string // in the refusal's log line
	}{
		{name: "user mode, same user and address", mode: policy.ReuseUser, userB: user, accept: true},
		{name: "user mode, sibling still logging in", mode: policy.ReuseUser, userB: user, slowA: true, accept: true},
		{name: "session mode", mode: policy.ReuseSession, userB: user, reason: "another control session"},
		{name: "other user", mode: policy.ReuseUser, userB: "someone-else", reason: "another user"},
		{name: "other address", mode: policy.ReuseUser, userB: user, fromA: "127.0.0.2", reason: "another client address"},
		{name: "sibling ended", mode: policy.ReuseUser, userB: user, endA: true, reason: "has ended"},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tc.name+"/"+tls.VersionName(v), func(t *testing.T) {
				g := startGateway(t, func(c *proxy.Config) {
					c.Backend.Address = f.ln.Addr().String()
					c.TLS.DataSessionReuse = tc.mode
				})
				shared := clientTLS()
				shared.MaxVersion = v
				// B's control connection first, then A's, which offers B's
				// ticket (not resumed: A is not logged in) and leaves its
				// own in the shared cache, the newest.
				b := dialSibling(t, g.addr("explicit"), "", shared)
				a := dialSibling(t, g.addr("explicit"), tc.fromA, shared)
				b.loginAs(tc.userB)
				if tc.slowA {
					// rclone's newest ticket is often that of a connection
					// between USER and PASS: B's handshake waits for it.
					a.do("USER "+user, wire.StatusUserOK)
					go func() {
						time.Sleep(200 * time.Millisecond)
						fmt.Fprintf(a.conn, "PASS %s\r\n", password)
					}()
				} else {
					a.loginAs(user)
				}
				if tc.endA {
					a.do("QUIT", wire.StatusClosing)
					waitFor(t, func() bool { return g.srv.SessionCount() == 1 }, "the sibling session to end")
				}

				// B's data connection offers A's ticket.
				got, code, resumed := b.retr("f", "")
				if tc.accept {
					if got != payload || code != wire.StatusClosingDataConnection || !resumed {
						t.Fatalf("B's transfer on A's TLS session: %q, %d, resumed %v", got, code, resumed)
					}
					if !hasLogLine(g.logs.String(), "client data TLS established", `"resumed":true`, `"ticket_session"`) {
						t.Error("no log line for the data connection that resumed a sibling's session")
					}
					if tc.slowA {
						a.expect(wire.StatusLoggedIn)
					}
					return
				}
				if got != "" || code != wire.StatusNeedSecurityResource {
					t.Fatalf("B's transfer on A's TLS session: %q, %d; want nothing and 431", got, code)
				}
				if logs := g.logs.String(); !strings.Contains(logs, "did not resume") || !strings.Contains(logs, tc.reason) {
					t.Errorf("no refusal line saying %q", tc.reason)
				}
				// B's own session still works: the refused handshake left
				// B's ticket in the cache.
				if got, code, resumed = b.retr("f", ""); got != payload || code != wire.StatusClosingDataConnection || !resumed {
					t.Fatalf("B's own transfer after the refusal: %q, %d, resumed %v", got, code, resumed)
				}
			})
		}
	}
}

// hasLogLine reports whether one line of logs contains all of parts.
func hasLogLine(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
