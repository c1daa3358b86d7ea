package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// countingListener listens on addr and counts the connections it accepts.
// It returns nil when addr cannot be bound.
func countingListener(t *testing.T, addr string) (*atomic.Int32, int) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0
	}
	var n atomic.Int32
	serveEach(t, ln, func(net.Conn) { n.Add(1) })
	return &n, ln.Addr().(*net.TCPAddr).Port
}

// privilegedListener binds a free port below 1024 on loopback (as root), or
// returns nil and a port below 1024 that nothing counts.
func privilegedListener(t *testing.T) (*atomic.Int32, int) {
	for p := 1023; p >= 900; p-- {
		if n, port := countingListener(t, fmt.Sprintf("127.0.0.1:%d", p)); n != nil {
			return n, port
		}
	}
	t.Log("no port below 1024 bindable (not root?): the refusal is checked, the absence of a connection is not")
	return nil, 1023
}

// hostileBackend is a fake backend whose passive replies name the port in
// target (0: the one it really listens on).
func hostileBackend(t *testing.T) (*fakeBackend, *atomic.Int32) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 here\r\n")
		ctrl.Flush()
		data.Close()
		ctrl.WriteString("226 done\r\n")
		ctrl.Flush()
	})
	var target atomic.Int32
	f.dataPort = func(listening int) int {
		if p := target.Load(); p != 0 {
			return int(p)
		}
		return listening
	}
	return f, &target
}

type portCase struct {
	name  string
	port  int
	count *atomic.Int32 // counts connections to port; nil: not counted
	want  string        // in the log line
}

// expectRefused has the backend name each case's port in reply to EPSV
// and PASV: each gets 425, a log line with the port, no connection there,
// and the session goes on.
func expectRefused(t *testing.T, g *gateway, f *fakeBackend, target *atomic.Int32, cases []portCase) {
	t.Helper()
	for _, pasv := range []bool{false, true} {
		f.noEPSV.Store(pasv)
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		for _, tc := range cases {
			target.Store(int32(tc.port))
			before := g.srv.Admission().Stats().Sessions
			c.do(verb(pasv), wire.StatusCannotOpenDataConnection)
			logs := g.logs.String()
			if !strings.Contains(logs, fmt.Sprintf(`"port":%d,`, tc.port)) || !strings.Contains(logs, tc.want) {
				t.Errorf("%s (%s, port %d): no log line with the port and %q", tc.name, verb(pasv), tc.port, tc.want)
			}
			time.Sleep(50 * time.Millisecond)
			if tc.count != nil && tc.count.Load() != 0 {
				t.Errorf("%s (%s): the gateway connected to port %d", tc.name, verb(pasv), tc.port)
			}
			if after := g.srv.Admission().Stats().Sessions; after != before {
				t.Errorf("%s (%s): sessions %d -> %d: the gateway connected to itself", tc.name, verb(pasv), before, after)
			}
			c.do("NOOP", wire.StatusCommandOK)
		}
		c.do("QUIT", wire.StatusClosing)
	}
}

// TestBackendDataPortRefused: a hostile backend (on the gateway's host)
// names a data port the gateway must not connect to: below 1024, one of
// the gateway's own listeners, its admin API (Config.OwnAddrs), a port of
// its passive range that it listens on. The gateway used to connect wherever the reply said.
func TestBackendDataPortRefused(t *testing.T) {
	privileged, lowPort := privilegedListener(t)
	admin, adminPort := countingListener(t, "127.0.0.1:0")
	f, target := hostileBackend(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend.Address = f.ln.Addr().String()
		c.Timeouts.Connect = time.Second
		c.OwnAddrs = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(adminPort))}
		c.Timeouts.DataAccept = 30 * time.Second
	})
	// Another session's leased passive port: connecting there would reach
	// the gateway's own listener.
	other := dialRaw(t, g.addr("explicit"), false)
	other.login(false)
	leased := other.epsv()
	expectRefused(t, g, f, target, []portCase{
		{"below 1024", lowPort, privileged, "below 1024"},
		{"ssh", 22, nil, "below 1024"},
		{"the gateway's own listener", g.srv.Addr("explicit").(*net.TCPAddr).Port, nil, "own listening ports"},
		{"the admin API", adminPort, admin, "own listening ports"},
		{"a leased port of the gateway's passive range", int(leased), nil, "own passive range"},
	})

	// The port the backend really listens on still works, both ways.
	target.Store(0)
	for _, pasv := range []bool{false, true} {
		f.noEPSV.Store(pasv)
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("LIST")
		c.expect(wire.StatusAboutToSend)
		_ = data.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(data)
		c.expect(wire.StatusClosingDataConnection)
	}
}

// TestBackendDataPortsPinned: with backend.data_ports, a port outside the
// range is refused.
func TestBackendDataPortsPinned(t *testing.T) {
	outside, outsidePort := countingListener(t, "127.0.0.1:0")
	f, target := hostileBackend(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend.Address = f.ln.Addr().String()
		c.Timeouts.Connect = time.Second
		c.Backend.DataPorts = nat.PortRange{Low: 1024, High: uint16(outsidePort - 1)}
	})
	expectRefused(t, g, f, target, []portCase{
		{"outside backend.data_ports", outsidePort, outside, "outside backend.data_ports"},
	})
}

func verb(pasv bool) string {
	if pasv {
		return "PASV"
	}
	return "EPSV"
}
