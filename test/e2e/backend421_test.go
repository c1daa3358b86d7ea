package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// waitLog waits until the gateway's log holds each of want.
func waitLog(t *testing.T, g *gateway, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := g.logs.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(logs, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBackend421OnRelayedCommand: a backend that answers a relayed command
// 421 is lost, even if it keeps the connection open: the client gets 421,
// the session ends and the log says why (it used to pass the 421 on and go
// on with a backend that had said goodbye).
func TestBackend421OnRelayedCommand(t *testing.T) {
	f := startFakeBackend(t, nil)
	f.answers = map[string]string{"CWD": "421 Timeout.\r\n"}
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("CWD /x", wire.StatusNotAvailable)
	c.expectClosed(10 * time.Second)
	waitLog(t, g, `"message":"backend failed"`, "replied 421 Timeout.", `"message":"session end"`, `"reason":"session `)
}

// TestBackend421DuringTransfer: a 421 in the middle of a download (vsftpd's
// "421 Data timeout") loses the backend: the transfer is cut (426), then
// the client gets 421 and the session ends, logged.
func TestBackend421DuringTransfer(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		_, _ = data.Write(make([]byte, 4096))
		ctrl.WriteString("421 Data timeout. Reconnect. Sorry.\r\n")
		ctrl.Flush()
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, data) // until the gateway cuts it
		data.Close()
	})
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR big")
	c.expect(wire.StatusAboutToSend)
	go func() { _, _ = io.Copy(io.Discard, data) }()
	c.expect(wire.StatusTransferAborted)
	c.expect(wire.StatusNotAvailable)
	c.expectClosed(10 * time.Second)
	waitLog(t, g, `"message":"backend failed"`, "replied 421 Data timeout.", `"message":"transfer"`, `"message":"session end"`)
}

// TestHugeBackendReplyNotLogged: a backend's unparsable 100 KB passive
// reply is quoted in the log cut short, not whole (every other backend
// reply the gateway logs goes through the same cut).
func TestHugeBackendReplyNotLogged(t *testing.T) {
	f := startFakeBackend(t, nil)
	huge := strings.Repeat("229-"+strings.Repeat("z", 1000)+"\r\n", 100) + "229 no port here\r\n"
	f.answers = map[string]string{"EPSV": huge, "PASV": strings.ReplaceAll(huge, "229", "227")}
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.send("EPSV")
	if rep := c.read(); rep.Code < 400 {
		t.Fatalf("EPSV through a backend with an unparsable passive reply: %d, want a refusal", rep.Code)
	}
	waitLog(t, g, "unparsable EPSV reply from backend")
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if len(line) > 4096 {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}
