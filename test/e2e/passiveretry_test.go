package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestBackendPassiveBusyAskedAgain: a backend that answers EPSV with a
// transient 425 (ProFTPD, when two of its sessions pick the same passive
// port at once) is asked again, and the client's transfer goes through
// without hearing of it; a backend that keeps refusing is asked
// passiveTries (3) times, and the client gets 425 and keeps its session.
func TestBackendPassiveBusyAskedAgain(t *testing.T) {
	payload := strings.Repeat("passive port clash\n", 1000)
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 here it comes\r\n")
		ctrl.Flush()
		_, _ = io.WriteString(data, payload)
		data.Close()
		ctrl.WriteString("226 done\r\n")
		ctrl.Flush()
	})
	var asked atomic.Int32
	f.record = func(line string) {
		if strings.EqualFold(line, "EPSV") {
			asked.Add(1)
		}
	}
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)

	f.busyPassive.Store(2)
	data := c.tlsData(c.dataConn(c.epsv(), ""))
	c.send("RETR file")
	c.expect(wire.StatusAboutToSend)
	got, err := io.ReadAll(data)
	if err != nil || string(got) != payload {
		t.Fatalf("download after two refused EPSV: %d bytes, %v", len(got), err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if n := asked.Load(); n != 3 {
		t.Fatalf("the backend was asked EPSV %d times, want 3", n)
	}
	waitLog(t, g, "backend refused EPSV for now: asking again")

	asked.Store(0)
	f.busyPassive.Store(10)
	if rep := c.do("EPSV", wire.StatusCannotOpenDataConnection); !strings.Contains(rep.Text(), "Cannot open data connection") {
		t.Fatalf("EPSV with a backend that keeps refusing: %q", rep.Text())
	}
	if n := asked.Load(); n != 3 {
		t.Fatalf("a backend that keeps refusing was asked EPSV %d times, want 3", n)
	}
	c.do("NOOP", wire.StatusCommandOK)
}
