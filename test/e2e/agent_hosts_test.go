package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/tunnel"
)

// startNamedAgent runs an agent named name (allowing allow) until the test
// ends and waits until the group has one agent more.
func (a *agentSetup) startNamedAgent(t *testing.T, name string, logs io.Writer, allow ...string) {
	t.Helper()
	al, err := tunnel.ParseAllowList(allow)
	if err != nil {
		t.Fatal(err)
	}
	before := a.hub.Agents("lan")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ag := tunnel.NewAgent(tunnel.AgentConfig{Gateways: []string{a.addr}, Certificate: a.agentTL,
		GatewayPins: [][32]byte{a.gwPin}, Group: "lan", Name: name, Allow: al}, zerolog.New(logs))
	go func() { defer close(done); _ = ag.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for a.hub.Agents("lan") == before {
		if time.Now().After(deadline) {
			t.Fatalf("agent %s did not join", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAgentDataSameLocalAddress: two agents on two hosts may connect to the
// backend from the same local address (each in a container on its host's
// bridge, 172.17.0.2): a session's data connections still go through the
// agent that carries its control connection, never the other one, whose
// connections the backend sees coming from another host (vsftpd: 425
// Security: Bad IP connecting). Here both agents connect from 127.0.0.1,
// and the agents' logs tell which carried each stream.
func TestAgentDataSameLocalAddress(t *testing.T) {
	a := startHub(t)
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a.hub.Dialer("lan"))}, viaLan)
	logs := map[string]*testproc.SyncBuffer{"x": {}, "y": {}}
	for _, name := range []string{"x", "y"} {
		a.startNamedAgent(t, name, logs[name], g.backend.Addr(), "127.0.0.1:1024-65535")
	}
	carrying := func() string {
		for _, ag := range a.hub.AgentsOf("lan") {
			if ag.Streams == 1 {
				return ag.Name
			}
		}
		t.Fatalf("no agent carries one stream: %+v", a.hub.AgentsOf("lan"))
		return ""
	}
	idle := dial(t, g, "explicit") // its control connection on one agent...
	other := carrying()
	_ = idle
	c := dial(t, g, "explicit") // ...this one's on the other
	mine := map[string]string{"x": "y", "y": "x"}[other]
	const lists = 8
	for i := range lists {
		if _, err := c.List("/"); err != nil {
			t.Fatalf("listing %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(logs[mine].String(), `"stream ended"`) < lists {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs[other].String(), `"stream ended"`); n > 0 {
		t.Errorf("agent %s, which carries the other session's control connection, carried %d of this session's data connections:\n%s", other, n, logs[other].String())
	}
	if n := strings.Count(logs[mine].String(), `"stream ended"`); n != lists {
		t.Errorf("agent %s, which carries the session's control connection, carried %d data connections, want %d", mine, n, lists)
	}
}

// lanBackend is a plain FTP server at 127.0.0.2 (another host, as an agent
// beside it sees it) that answers EPSV (unless noEPSV) and PASV with the
// port in port and listens for the data connection there, on 127.0.0.2; a
// LIST gets one line.
func lanBackend(t *testing.T, port *atomic.Int32, noEPSV *atomic.Bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	serveEach(t, ln, func(c net.Conn) { lanSession(c, int(port.Load()), noEPSV.Load()) })
	return ln.Addr().String()
}

func lanSession(c net.Conn, port int, noEPSV bool) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { _, _ = io.WriteString(c, s+"\r\n") }
	say("220 lan ready")
	var data net.Listener
	defer func() {
		if data != nil {
			data.Close()
		}
	}()
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch verb = strings.ToUpper(verb); verb {
		case "USER":
			say("331 password")
		case "PASS":
			say("230 in")
		case "EPSV", "PASV":
			if verb == "EPSV" && noEPSV {
				say("502 no EPSV")
				continue
			}
			if data == nil {
				if data, err = net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port)); err != nil {
					say("425 " + err.Error())
					continue
				}
			}
			if verb == "EPSV" {
				say(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)", port))
			} else {
				say(fmt.Sprintf("227 Entering Passive Mode (127,0,0,2,%d,%d)", port>>8, port&0xff))
			}
		case "LIST":
			_ = data.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
			d, err := data.Accept()
			if err != nil {
				say("425 no data connection")
				continue
			}
			say("150 here")
			_, _ = io.WriteString(d, "lan-file\r\n")
			d.Close()
			say("226 done")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("200 ok")
		}
	}
}

// TestAgentBackendPortIsNotOurs: an agent beside the server reaches it on
// its own loopback (backend.address 127.0.0.1:21 as the agent sees it), so
// the backend's host is a loopback address, but not the gateway's host: a
// data port that is also one of the gateway's own listening ports (or of
// its passive range) is the backend's, and the gateway used to refuse it
// (425) as if the backend had named the gateway itself. Here the backend
// is 127.0.0.2 and names, as its data port, the port of the gateway's
// explicit listener on 127.0.0.1 (EPSV, then PASV).
func TestAgentBackendPortIsNotOurs(t *testing.T) {
	a := startHub(t)
	var port atomic.Int32
	var noEPSV atomic.Bool
	backend := lanBackend(t, &port, &noEPSV)
	g := startGatewayWith(t, []proxy.Option{proxy.WithTunnel("lan", a.hub.Dialer("lan"))}, viaLan, func(c *proxy.Config) {
		c.Backend.Address = backend
	})
	port.Store(int32(g.srv.Addr("explicit").(*net.TCPAddr).Port))
	a.startAgent(t, io.Discard, backend, "127.0.0.2:1024-65535")
	for _, pasv := range []bool{false, true} {
		noEPSV.Store(pasv)
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		data := c.tlsData(c.dataConn(c.epsv(), ""))
		c.send("LIST")
		c.expect(wire.StatusAboutToSend)
		_ = data.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(data)
		c.expect(wire.StatusClosingDataConnection)
		if string(got) != "lan-file\r\n" {
			t.Fatalf("%s: listing %q", verb(pasv), got)
		}
		c.do("QUIT", wire.StatusClosing)
	}
}
