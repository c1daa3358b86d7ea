package audit

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

func testRecords(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{V: SchemaVersion, ID: fmt.Sprintf("t-%06d", i), Time: time.Date(2026, 11, 30, 0, 0, 0, i*1000, time.UTC),
			Kind: KindTransfer, Session: "s" + strconv.Itoa(i), Client: "127.0.0.1:5000", User: "alice",
			Transfer: &Transfer{Verb: "STOR", Direction: "upload", Path: fmt.Sprintf("/in/f %d.txt", i), Bytes: int64(i), Complete: true, Code: 226, SHA256: strings.Repeat("a", 64)}}
	}
	return recs
}

// readFrame reads one RFC 6587 octet-counted frame.
func readFrame(br *bufio.Reader) (string, error) {
	n, err := br.ReadString(' ')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
	if err != nil {
		return "", err
	}
	b := make([]byte, size)
	_, err = io.ReadFull(br, b)
	return string(b), err
}

// parse5424 returns the header fields and the MSG of a message.
func parse5424(t *testing.T, m string) ([]string, string) {
	t.Helper()
	f := strings.SplitN(m, " ", 8)
	if len(f) != 8 || !strings.HasSuffix(f[0], ">1") {
		t.Fatalf("not RFC 5424: %q", m)
	}
	return f[:7], f[7]
}

func TestSyslogFormat(t *testing.T) {
	s, err := NewSyslog(SyslogConfig{Network: "tcp", Address: "127.0.0.1:1", Hostname: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	ok := Record{ID: "a", Kind: KindLogin, Time: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Login: &Login{Result: "ok"}}
	bad := Record{ID: "b", Kind: KindLogin, Login: &Login{Result: "failed"}}
	sess := Record{ID: "c", Kind: KindSessionStart, SessionStart: &SessionStart{}}
	for _, c := range []struct {
		r    Record
		want string
	}{
		{ok, "<133>1 2026-01-02T03:04:05.123456Z gw1 ftpsgate"},
		{bad, "<132>1 - gw1 ftpsgate"},
		{sess, "<134>1 - gw1 ftpsgate"},
	} {
		m, err := s.Format(&c.r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(m), c.want) {
			t.Errorf("%s: %q, want prefix %q", c.r.ID, m, c.want)
		}
		h, msg := parse5424(t, string(m))
		if h[5] != c.r.Kind || h[6] != "-" {
			t.Errorf("MSGID/SD %q", h)
		}
		var back Record
		if err := json.Unmarshal([]byte(msg), &back); err != nil || back.ID != c.r.ID {
			t.Errorf("MSG %q: %v", msg, err)
		}
	}
}

func TestSyslogValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  SyslogConfig
		want string
	}{
		{SyslogConfig{}, "address: required"},
		{SyslogConfig{Address: "x"}, "address:"},
		{SyslogConfig{Address: "a:1", Network: "sctp"}, "network:"},
		{SyslogConfig{Address: "a:1", Format: "xml"}, "format:"},
		{SyslogConfig{Address: "a:1", Network: "udp", CAFile: "x"}, "ca_file:"},
		{SyslogConfig{Address: "a:1", CertFile: "x"}, "cert_file:"},
		{SyslogConfig{Address: "a:1", Facility: 24}, "facility:"},
		{SyslogConfig{Address: "a:1", Network: "udp", MaxMessage: 100}, "max_message:"},
		{SyslogConfig{Address: "a:1", MaxMessage: 100}, "max_message:"},
		{SyslogConfig{Address: "a:1", Hostname: "a b"}, "hostname:"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := (&SyslogConfig{Address: "127.0.0.1:6514"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

// TestSyslogUDPTruncation: a record longer than max_message arrives
// cut, marked with its length, and counted; the short one whole.
func TestSyslogUDPTruncation(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s, err := NewSyslog(SyslogConfig{Network: "udp", Address: pc.LocalAddr().String(), MaxMessage: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := testRecords(2)
	recs[1].Transfer.Path = strings.Repeat("x", 1000)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	_, msg := parse5424(t, string(buf[:n]))
	var back Record
	if err := json.Unmarshal([]byte(msg), &back); err != nil || back.ID != recs[0].ID {
		t.Fatalf("first: %q %v", msg, err)
	}
	n, _, err = pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != 600 || !strings.Contains(string(buf[:n]), `[truncated@32473 length="`) {
		t.Fatalf("second (%d bytes): %q", n, buf[:n])
	}
	if s.Truncated() != 1 {
		t.Fatalf("Truncated() = %d", s.Truncated())
	}
}

// acceptFrames accepts connections on ln and sends each frame read on
// any of them to out; closeAfter > 0 closes each connection after that
// many frames.
func acceptFrames(ln net.Listener, out chan<- string, closeAfter int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			br := bufio.NewReader(c)
			for i := 0; closeAfter == 0 || i < closeAfter; i++ {
				f, err := readFrame(br)
				if err != nil {
					return
				}
				out <- f
			}
		}()
	}
}

func TestSyslogTLS(t *testing.T) {
	ca, err := testpki.NewCA("syslog test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := dir + "/ca.pem"
	if err := testpki.WritePEM(caFile, 0o644, "CERTIFICATE", ca.DER); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := make(chan string, 100)
	go acceptFrames(ln, out, 0)

	s, err := NewSyslog(SyslogConfig{Address: ln.Addr().String(), CAFile: caFile, Format: SyslogCEF})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := testRecords(3)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		f := <-out
		_, msg := parse5424(t, f)
		_, ext, err := parseCEF(msg)
		if err != nil || ext["cs2"] != recs[i].ID || ext["fname"] != recs[i].Transfer.Path {
			t.Fatalf("frame %d: %q %v", i, f, err)
		}
	}

	// A receiver whose certificate the CA did not sign is refused.
	other, err := NewSyslog(SyslogConfig{Address: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Write(context.Background(), recs[:1]); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified receiver: %v", err)
	}
}

// TestSyslogReconnectResend: the receiver closes each connection after 3
// frames; the sink notices, reconnects and writes its window again, so
// every record arrives (some twice), in order of first arrival.
func TestSyslogReconnectResend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := make(chan string, 1000)
	go acceptFrames(ln, out, 3)
	s, err := NewSyslog(SyslogConfig{Network: "tcp", Address: ln.Addr().String(), Resend: 4, BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 20 records, then 3 more: a resend happens on the next Write, so the
	// last connection's lost frames come again with those.
	all := testRecords(23)
	recs := all[:20]
	for i := 0; i < len(all); i += 2 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := s.Write(context.Background(), all[i:min(i+2, len(all))])
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	seen := map[string]bool{}
	var order []string
	timeout := time.After(10 * time.Second)
	for len(order) < len(recs) || !seen[recs[len(recs)-1].ID] {
		select {
		case f := <-out:
			_, msg := parse5424(t, f)
			var r Record
			if err := json.Unmarshal([]byte(msg), &r); err != nil {
				t.Fatal(err)
			}
			if !seen[r.ID] {
				seen[r.ID] = true
				order = append(order, r.ID)
			}
		case <-timeout:
			t.Fatalf("got %d of %d records: %v", len(seen), len(recs), order)
		}
	}
	for i, id := range order {
		if id != all[i].ID {
			t.Fatalf("order: %v", order)
		}
	}
}

// TestSyslogBackoff: after a failed dial, Write fails at once without
// dialling until the backoff is over.
func TestSyslogBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s, err := NewSyslog(SyslogConfig{Network: "tcp", Address: addr, BackoffMin: time.Hour, BackoffMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testRecords(1)); err == nil {
		t.Fatal("no error from a closed port")
	}
	if err := s.Write(context.Background(), testRecords(1)); err == nil || !strings.Contains(err.Error(), "next try in") {
		t.Fatalf("second write: %v", err)
	}
}

func TestParseSyslogFacility(t *testing.T) {
	for in, want := range map[string]int{"": 16, "local0": 16, "LOCAL7": 23, "auth": 4, "ftp": 11, "kern": -1, "0": -1, "3": 3} {
		got, err := ParseSyslogFacility(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
		cfg := SyslogConfig{Facility: got}
		if in == "kern" && cfg.facility() != 0 {
			t.Errorf("kern: facility() %d", cfg.facility())
		}
	}
	for _, in := range []string{"local8", "24", "-1", "x"} {
		if _, err := ParseSyslogFacility(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// TestSyslogClientCert: a receiver that asks for a client certificate
// gets the configured one; without it the handshake fails.
func TestSyslogClientCert(t *testing.T) {
	ca, err := testpki.NewCA("syslog mTLS CA")
	if err != nil {
		t.Fatal(err)
	}
	srvLeaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Client("gateway")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := dir+"/ca.pem", dir+"/client.pem", dir+"/client.key"
	for _, w := range []struct {
		path, typ string
		der       []byte
	}{{caFile, "CERTIFICATE", ca.DER}, {certFile, "CERTIFICATE", cli.DER}, {keyFile, "PRIVATE KEY", cli.KeyDER}} {
		if err := testpki.WritePEM(w.path, 0o600, w.typ, w.der); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvLeaf.TLS},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := make(chan string, 10)
	go acceptFrames(ln, out, 0)

	with, err := NewSyslog(SyslogConfig{Address: ln.Addr().String(), CAFile: caFile, CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	defer with.Close()
	if err := with.Write(context.Background(), testRecords(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("no message with the client certificate")
	}

	without, err := NewSyslog(SyslogConfig{Address: ln.Addr().String(), CAFile: caFile, Network: SyslogTLS, Resend: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer without.Close()
	// TLS 1.3 refuses the client certificate after the client's
	// handshake: the sink waits for that and reports it.
	if err := without.Write(context.Background(), testRecords(1)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without a client certificate: %v", err)
	}
	select {
	case f := <-out:
		t.Fatalf("a message without a client certificate: %q", f)
	case <-time.After(300 * time.Millisecond):
	}
}
