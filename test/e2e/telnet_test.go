package e2e

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// lineRecorder is a backend that logs in anyone and records every command
// line it receives, byte for byte.
type lineRecorder struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
}

func startLineRecorder(t *testing.T) *lineRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &lineRecorder{ln: ln}
	serveEach(t, ln, r.session)
	return r
}

func (r *lineRecorder) session(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	_, _ = c.Write([]byte("220 recorder ready\r\n"))
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		r.mu.Lock()
		r.lines = append(r.lines, line)
		r.mu.Unlock()
		reply := "200 ok\r\n"
		switch verb, _, _ := strings.Cut(line, " "); strings.ToUpper(verb) {
		case "USER":
			reply = "331 password please\r\n"
		case "PASS":
			reply = "230 logged in\r\n"
		case "QUIT":
			_, _ = c.Write([]byte("221 bye\r\n"))
			return
		}
		_, _ = c.Write([]byte(reply))
	}
}

func (r *lineRecorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// TestTelnetInCommandRefused: a command line holding a Telnet IAC after
// the verb's start would reach a Telnet-aware backend (ProFTPD) as another
// command: "USER anonymou<IAC><IAC><IP>s" is "USER anonymous" there, past
// the gateway's anonymous check. The gateway answers 500 and forwards
// nothing; the session goes on, and the Synch before ABOR still works.
func TestTelnetInCommandRefused(t *testing.T) {
	rec := startLineRecorder(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend.Address = rec.ln.Addr().String()
		c.Login.AllowAnonymous = false
	})
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	// Four bad lines: the fifth would ban the address (abuse.protocol).
	for _, line := range []string{
		"USER anonymou\xff\xff\xf4s", // IAC IAC IP: 0xFF 0xF4 on the wire, IAC IP at ProFTPD
		"USER anonymou\xff\xf4s",     // IAC IP inside the argument
		"US\xff\xf1ER anonymous",     // IAC NOP inside the verb
		"USER anonymous\xff",         // a lone IAC at the end
	} {
		c.do(line, wire.StatusSyntaxError)
	}
	if got := rec.received(); len(got) != 0 {
		t.Fatalf("the backend received %q; want nothing", got)
	}
	c.do("\xff\xf4\xff\xf2NOOP", wire.StatusCommandOK) // Telnet in front of the verb is fine
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
	got := rec.received()
	if len(got) < 2 || got[0] != "USER "+user {
		t.Fatalf("the backend received %q; want USER %s first", got, user)
	}
	for _, l := range got {
		if strings.IndexByte(l, 0xFF) >= 0 || strings.Contains(l, "anonymous") {
			t.Errorf("the backend received %q", l)
		}
	}
}

// TestUserForwardedAsChecked: the gateway checks and counts the user name
// without the spaces around it, so that is what the backend receives too.
func TestUserForwardedAsChecked(t *testing.T) {
	rec := startLineRecorder(t)
	g := startGateway(t, func(c *proxy.Config) { c.Backend.Address = rec.ln.Addr().String() })
	c := dialRaw(t, g.addr("implicit"), true)
	c.do("USER  "+user+" \t", wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn) // the backend is dialled at PASS
	if got := rec.received(); len(got) != 2 || got[0] != "USER "+user {
		t.Fatalf("the backend received %q; want %q", got, "USER "+user)
	}
}
