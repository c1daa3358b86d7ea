package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// fakeBackend is a scripted FTP server for fault injection: it logs in
// anyone, answers EPSV with its own data listener, and hands transfer
// commands to a script that reproduces a real server's quirk.
type fakeBackend struct {
	ln       net.Listener
	wg       sync.WaitGroup
	transfer func(ctrl *bufio.ReadWriter, data net.Conn, cmd string)
	onABOR   string // the reply to ABOR; empty: "225 No transfer to ABOR"
	// answers, when set, replies to the verbs it names instead of the
	// usual (a 421 for CWD, say); the connection stays open.
	answers map[string]string
	// dataPort, if set, chooses the port its EPSV and PASV replies name,
	// given the one it listens on: a hostile backend's reply.
	dataPort func(listening int) int
	noEPSV   atomic.Bool // EPSV gets 502, PASV is answered
	// busyPassive: the next this many EPSV or PASV get ProFTPD's 425 for a
	// passive port another of its sessions took at the same moment.
	busyPassive atomic.Int32
	// tls, when set, makes it an explicit FTPS server: AUTH TLS, and TLS on
	// the data connections after PROT P (a *tls.Conn handed to transfer).
	tls *tls.Config
	// record, when set, sees every command line the fake reads.
	record func(line string)
}

// announced is the port a passive reply names.
func (f *fakeBackend) announced(listening int) int {
	if f.dataPort != nil {
		return f.dataPort(listening)
	}
	return listening
}

func startFakeBackend(t *testing.T, transfer func(ctrl *bufio.ReadWriter, data net.Conn, cmd string)) *fakeBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{ln: ln, transfer: transfer}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeBackend) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.session(c) }()
	}
}

func (f *fakeBackend) session(c net.Conn) {
	defer func() { c.Close() }()
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	protect := false
	say := func(s string) { rw.WriteString(s); rw.Flush() }
	say("220 fake ready\r\n")
	var dataLn net.Listener
	defer func() {
		if dataLn != nil {
			dataLn.Close()
		}
	}()
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, _, _ := strings.Cut(line, " ")
		if f.record != nil {
			f.record(line)
		}
		if a, ok := f.answers[strings.ToUpper(verb)]; ok {
			say(a)
			continue
		}
		switch strings.ToUpper(verb) {
		case "AUTH":
			if f.tls == nil {
				say("200 ok\r\n")
				continue
			}
			say("234 go ahead\r\n")
			c = tls.Server(c, f.tls)
			rw = bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
		case "PROT":
			protect = f.tls != nil && strings.EqualFold(line, "PROT P")
			say("200 ok\r\n")
		case "USER":
			say("331 password please\r\n")
		case "PASS":
			say("230 logged in\r\n")
		case "EPSV", "PASV":
			if strings.EqualFold(verb, "EPSV") && f.noEPSV.Load() {
				say("502 EPSV not implemented\r\n")
				continue
			}
			if f.busyPassive.Add(-1) >= 0 {
				say("425 Unable to build data connection: Address already in use\r\n")
				continue
			}
			if dataLn != nil {
				dataLn.Close()
			}
			dataLn, _ = net.Listen("tcp", "127.0.0.1:0")
			port := f.announced(dataLn.Addr().(*net.TCPAddr).Port)
			if strings.EqualFold(verb, "EPSV") {
				say(fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", port))
			} else {
				say(fmt.Sprintf("227 Entering Passive Mode (127,0,0,1,%d,%d)\r\n", port>>8, port&0xff))
			}
		case "RETR", "STOR", "LIST":
			d, err := dataLn.Accept()
			if err != nil {
				say("425 no data connection\r\n")
				continue
			}
			if protect {
				d = tls.Server(d, f.tls)
			}
			f.transfer(rw, d, line)
		case "ABOR":
			if f.onABOR != "" {
				say(f.onABOR)
			} else {
				say("225 No transfer to ABOR\r\n")
			}
		case "QUIT":
			say("221 bye\r\n")
			return
		default:
			say("200 ok\r\n")
		}
	}
}

// sendUntilCut writes to data until the other end goes away, then closes it.
func sendUntilCut(data net.Conn) {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := data.Write(chunk); err != nil {
			break
		}
	}
	data.Close()
}

// fakeGateway is a gateway in front of a fake backend, with plain data for
// brevity.
func fakeGateway(t *testing.T, f *fakeBackend) *gateway {
	return startGateway(t, func(c *proxy.Config) {
		c.Backend.Address = f.ln.Addr().String()
		c.Timeouts.Connect = time.Second
	})
}

// TestCutDownloadWithoutFinalReply: Pure-FTPd answers a download the client
// cut short with its statistics as a 150 and no final reply. The client
// gets 426 once the backend stays silent, and the session goes on.
func TestCutDownloadWithoutFinalReply(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150-Accepted data connection\r\n150 32768.0 kbytes to download\r\n")
		ctrl.Flush()
		sendUntilCut(data)
		ctrl.WriteString("150 0.002 seconds (measured here), 68.45 Mbytes per second\r\n")
		ctrl.Flush()
	})
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR big")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Read(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	data.Close()
	rep := c.read()
	if rep.Code != wire.StatusTransferAborted {
		t.Fatalf("after the cut: %d %q, want 426", rep.Code, rep.Text())
	}
	c.do("NOOP", wire.StatusCommandOK)
}

// TestAbortProFTPDStyle: ProFTPD answers ABOR during a transfer with its
// transfer's 426 and then 426 and 226 for ABOR (other timings give 226-426).
// The client gets RFC 959's 426 then 226, nothing more, and the session
// stays in step. The fake, like vsftpd, reads no command while it sends:
// the gateway cuts the data after abortGrace.
func TestAbortProFTPDStyle(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		sendUntilCut(data)
		ctrl.WriteString("426 Transfer aborted. Data connection closed\r\n")
		ctrl.Flush()
	})
	f.onABOR = "426 Transfer aborted. Data connection closed\r\n226 Abort successful\r\n"
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR big")
	c.expect(wire.StatusAboutToSend)
	if _, err := data.Read(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	c.send("ABOR")
	c.expect(wire.StatusTransferAborted)
	c.expect(wire.StatusClosingDataConnection)
	c.do("NOOP", wire.StatusCommandOK)
	// With no transfer running, ABOR is answered at the gateway.
	c.do("ABOR", wire.StatusClosingDataConnection)
	c.do("NOOP", wire.StatusCommandOK)
}

// TestZeroByteDownloadClientClosesFirst: a client that closes its data
// connection as soon as it has the announced 0 bytes still gets 226.
func TestZeroByteDownloadClientClosesFirst(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection for zero (0 bytes)\r\n")
		ctrl.Flush()
		data.Close()
		time.Sleep(50 * time.Millisecond)
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	g := fakeGateway(t, f)
	for range 5 {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		raw := c.dataConn(port, "")
		data := c.tlsData(raw)
		c.send("RETR zero")
		c.expect(wire.StatusAboutToSend)
		if err := data.Handshake(); err != nil {
			t.Fatal(err)
		}
		data.Close() // at once, as curl does when it expects 0 bytes
		c.expect(wire.StatusClosingDataConnection)
	}
}

// TestEmptyDownloadBackendWaitsForClient: vsftpd over TLS keeps a 0-byte
// download's data connection open until the client closes its end; curl,
// told "(0 bytes)", closes at once. The gateway must see the client's close
// and pass it on, not wait for the backend (curl timed out after 60 s).
func TestEmptyDownloadBackendWaitsForClient(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection for zero (0 bytes).\r\n")
		ctrl.Flush()
		_ = data.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _ = data.Read(make([]byte, 1)) // until the other end closes
		data.Close()
		ctrl.WriteString("226 Transfer complete.\r\n")
		ctrl.Flush()
	})
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR zero")
	c.expect(wire.StatusAboutToSend)
	if err := data.Handshake(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data.Close()
	c.expect(wire.StatusClosingDataConnection)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("226 came %s after the client closed", d)
	}
}
