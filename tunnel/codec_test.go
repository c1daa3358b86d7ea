package tunnel

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Request
		bad  bool
	}{
		{line: "CONNECT 10.0.0.5:21", want: Request{Address: "10.0.0.5:21"}},
		{line: "CONNECT 10.0.0.5:021", want: Request{Address: "10.0.0.5:21"}},
		{line: "CONNECT [fd00::5]:21 FROM fd00::9", want: Request{Address: "[fd00::5]:21", From: netip.MustParseAddr("fd00::9")}},
		{line: "CONNECT ftp.lan:40000 FROM 10.0.0.9", want: Request{Address: "ftp.lan:40000", From: netip.MustParseAddr("10.0.0.9")}},
		{line: "CONNECT 10.0.0.5", bad: true},
		{line: "CONNECT 10.0.0.5:0", bad: true},
		{line: "CONNECT 10.0.0.5:65536", bad: true},
		{line: "CONNECT 10.0.0.5:+21", bad: true},
		{line: "CONNECT :21", bad: true},
		{line: "CONNECT fe80::1%eth0:21", bad: true},
		{line: "CONNECT [fe80::1%eth0]:21", bad: true},
		{line: "CONNECT a..b:21", bad: true},
		{line: "CONNECT 10.0.0.5:21 FROM", bad: true},
		{line: "CONNECT 10.0.0.5:21 TO 10.0.0.1", bad: true},
		{line: "CONNECT 10.0.0.5:21 FROM nothing", bad: true},
		{line: "connect 10.0.0.5:21", bad: true},
		{line: "CONNECT  10.0.0.5:21", bad: true},
		{line: "", bad: true},
	} {
		got, err := ParseRequest(tc.line)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: parsed as %+v, want an error", tc.line, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	ok, err := ParseReply("OK 10.0.0.5:21 10.0.0.9:40001")
	if err != nil || ok.Code != "" || ok.Remote != netip.MustParseAddrPort("10.0.0.5:21") || ok.Local != netip.MustParseAddrPort("10.0.0.9:40001") {
		t.Fatalf("OK: %+v %v", ok, err)
	}
	e, err := ParseReply("ERR refused destination not in the agent's allow list")
	if err != nil || e.Code != CodeRefused || e.Text != "destination not in the agent's allow list" {
		t.Fatalf("ERR: %+v %v", e, err)
	}
	for _, bad := range []string{"OK", "OK 1.2.3.4:5", "OK x y", "ERR", "ERR  text", "ERR co/de text", "MAYBE", "ok 1.2.3.4:5 1.2.3.4:6"} {
		if r, err := ParseReply(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, r)
		}
	}
	if s := (Reply{Code: CodeDial, Text: "bad\r\nline\x00"}).String(); s != "ERR dial bad??line?" {
		t.Errorf("control characters in a reply: %q", s)
	}
}

func TestReadLine(t *testing.T) {
	r := strings.NewReader("CONNECT 10.0.0.5:21\n220 banner follows")
	line, err := ReadLine(r)
	if err != nil || line != "CONNECT 10.0.0.5:21" {
		t.Fatalf("%q %v", line, err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "220 banner follows" {
		t.Fatalf("ReadLine consumed past the newline: %q left", rest)
	}
	if _, err := ReadLine(strings.NewReader(strings.Repeat("x", maxLine) + "\n")); !errors.Is(err, errLineTooLong) {
		t.Fatalf("a long line: %v", err)
	}
	if _, err := ReadLine(strings.NewReader("CONNECT x:1\r\n")); err == nil {
		t.Fatal("CR accepted")
	}
	if _, err := ReadLine(strings.NewReader("CONNECT")); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a truncated line: %v", err)
	}
	if _, err := ReadLine(strings.NewReader("")); !errors.Is(err, io.EOF) {
		t.Fatalf("no line: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteLine(&buf, strings.Repeat("x", maxLine)); err == nil {
		t.Fatal("WriteLine wrote an over-long line")
	}
}

// FuzzRequest: a request that parses formats to a line that parses to the
// same request, and whose address the allow list can judge without
// panicking.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{"CONNECT 10.0.0.5:21", "CONNECT [::1]:21 FROM ::1", "CONNECT ftp.lan:40000 FROM 10.0.0.9", "CONNECT 1.2.3.4:0", "OK 1.2.3.4:5 6.7.8.9:10", "ERR refused no"} {
		f.Add(s)
	}
	allow, _ := ParseAllowList([]string{"10.0.0.0/8:21", "[::1]:1-65535", "ftp.lan:40000-40100"})
	f.Fuzz(func(t *testing.T, line string) {
		if r, err := ParseRequest(line); err == nil {
			s := r.String()
			r2, err := ParseRequest(s)
			if err != nil || r2 != r {
				t.Fatalf("%q -> %q -> %+v, %v", line, s, r2, err)
			}
			_ = allow.Allows(r.Address)
		}
		if rep, err := ParseReply(line); err == nil {
			s := rep.String()
			rep2, err := ParseReply(s)
			if err != nil || rep2 != rep {
				t.Fatalf("reply %q -> %q -> %+v, %v", line, s, rep2, err)
			}
		}
		_, _ = ReadLine(strings.NewReader(line))
	})
}

func netipAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}
