package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

type tcpDialer struct{}

func (tcpDialer) DialBackend(ctx context.Context, address string, _ netip.Addr) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", address)
}

// step is one exchange of a scripted server: it waits for a command line
// starting with expect (none for the greeting), then writes reply (CRLF
// added per line); "TLS" as the reply starts TLS after writing 234.
type step struct{ expect, reply string }

// scripted serves one connection with steps and records the commands it
// got.
func scripted(t *testing.T, conf *tls.Config, implicit bool, steps ...step) (addr string, got chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got = make(chan []string, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		var conn net.Conn = c
		if implicit {
			conn = tls.Server(c, conf)
		}
		br := bufio.NewReader(conn)
		var lines []string
		defer func() { got <- lines }()
		if len(steps) == 0 {
			return // closed before the banner
		}
		for _, s := range steps {
			if s.expect != "" {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				line = strings.TrimRight(line, "\r\n")
				lines = append(lines, line)
				if !strings.HasPrefix(line, s.expect) {
					_, _ = conn.Write([]byte("500 unexpected\r\n"))
					return
				}
			}
			if s.reply == "TLS" {
				_, _ = conn.Write([]byte("234 go ahead\r\n"))
				conn = tls.Server(c, conf)
				br = bufio.NewReader(conn)
				continue
			}
			for _, l := range strings.Split(s.reply, "\n") {
				_, _ = conn.Write([]byte(l + "\r\n"))
			}
		}
		if line, err := br.ReadString('\n'); err == nil {
			lines = append(lines, strings.TrimRight(line, "\r\n"))
		}
	}()
	return ln.Addr().String(), got
}

func TestProbe(t *testing.T) {
	ca, err := testpki.NewCA("probe test")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	clientTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}
	otherCA, _ := testpki.NewCA("other")
	untrusted := &tls.Config{RootCAs: otherCA.Pool(), ServerName: "127.0.0.1"}
	const secret = "Probe-Secret-123"

	for _, tc := range []struct {
		name     string
		probe    Probe
		implicit bool // the server is implicit TLS
		steps    []step
		wantErr  string // "" passes
		wantCmds []string
	}{
		{name: "banner", steps: []step{{"", "220 ready"}}, wantCmds: []string{"QUIT"}},
		{name: "120 then 220", steps: []step{{"", "120 soon\n220 ready"}}, wantCmds: []string{"QUIT"}},
		{name: "multi-line banner", steps: []step{{"", "220-hello\n220 ready"}}, wantCmds: []string{"QUIT"}},
		{name: "421 banner", steps: []step{{"", "421 too many"}}, wantErr: "banner 421"},
		{name: "no banner", steps: nil, wantErr: "banner"},
		{name: "login", probe: Probe{User: "probe", Password: secret},
			steps:    []step{{"", "220 ready"}, {"USER probe", "331 pass"}, {"PASS " + secret, "230 in"}},
			wantCmds: []string{"USER probe", "PASS " + secret, "QUIT"}},
		{name: "login refused", probe: Probe{User: "probe", Password: secret},
			steps:   []step{{"", "220 ready"}, {"USER probe", "331 pass"}, {"PASS", "530 no"}},
			wantErr: "probe login as probe: refused: 530"},
		{name: "login refused, the password echoed", probe: Probe{User: "probe", Password: secret},
			steps:   []step{{"", "220 ready"}, {"USER probe", "331 pass"}, {"PASS", "500 'PASS " + secret + "': command not understood"}},
			wantErr: "probe login as probe: refused: 500"},
		{name: "a long banner is cut in the error", steps: []step{{"", strings.Repeat("421-"+strings.Repeat("x", 1000)+"\n", 100) + "421 busy"}},
			wantErr: "banner 421"},
		{name: "explicit TLS and login", probe: Probe{TLS: clientTLS, AuthTLS: true, User: "probe", Password: secret},
			steps:    []step{{"", "220 ready"}, {"AUTH TLS", "TLS"}, {"USER probe", "230 no password needed"}},
			wantCmds: []string{"AUTH TLS", "USER probe", "QUIT"}},
		{name: "AUTH TLS refused", probe: Probe{TLS: clientTLS, AuthTLS: true},
			steps: []step{{"", "220 ready"}, {"AUTH TLS", "502 no TLS here"}}, wantErr: "AUTH TLS refused: 502"},
		{name: "untrusted certificate", probe: Probe{TLS: untrusted, AuthTLS: true},
			steps: []step{{"", "220 ready"}, {"AUTH TLS", "TLS"}}, wantErr: "TLS handshake"},
		{name: "implicit", probe: Probe{TLS: clientTLS, Implicit: true}, implicit: true,
			steps: []step{{"", "220 ready"}}, wantCmds: []string{"QUIT"}},
		{name: "header first", probe: Probe{Header: func(c net.Conn) error { _, err := c.Write([]byte("HELLO\r\n")); return err }},
			steps: []step{{"HELLO", "220 ready"}}, wantCmds: []string{"HELLO", "QUIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, got := scripted(t, serverTLS, tc.implicit, tc.steps...)
			p := tc.probe
			p.Address, p.Dialer = addr, tcpDialer{}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := p.Run(ctx)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Run: %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Fatalf("the password is in the error: %v", err)
			}
			if err != nil && len(err.Error()) > 1024 {
				t.Fatalf("an error of %d bytes: a backend's reply text fills the log", len(err.Error()))
			}
			cmds := <-got
			if tc.wantCmds != nil && strings.Join(cmds, "|") != strings.Join(tc.wantCmds, "|") {
				t.Errorf("the server got %q, want %q", cmds, tc.wantCmds)
			}
		})
	}
	// Nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if err := (Probe{Address: addr, Dialer: tcpDialer{}}).Run(context.Background()); err == nil {
		t.Error("a closed port passed")
	}
}

// TestProbeCancel: a probe of a backend that accepts and never greets
// ends when its context is cancelled (shutdown, a reload stopping the
// checker), not only at its deadline.
func TestProbeCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = c.Read(make([]byte, 1)) // until the probe hangs up
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err = Probe{Address: ln.Addr().String(), Dialer: tcpDialer{}}.Run(ctx)
	if err == nil {
		t.Fatal("a silent backend passed")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cancelled probe ran %s (its deadline was 10s away)", d)
	}
}
