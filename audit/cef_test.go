package audit

import (
	"strings"
	"testing"
	"time"
)

func TestCEFEscape(t *testing.T) {
	for _, c := range []struct{ in, header, value string }{
		{"plain", "plain", "plain"},
		{`a|b`, `a\|b`, `a|b`},
		{`a\b`, `a\\b`, `a\\b`},
		{`a=b`, `a=b`, `a\=b`},
		{"a\nb", "a b", `a\nb`},
		{"a\r\nb", "a  b", `a\r\nb`},
		{`\|=`, `\\\|=`, `\\|\=`},
		{"a\tb\x00c\x7f", "a b c ", "a b c "},
		{"", "", ""},
	} {
		if got := CEFHeaderEscape(c.in); got != c.header {
			t.Errorf("CEFHeaderEscape(%q) = %q, want %q", c.in, got, c.header)
		}
		if got := CEFValueEscape(c.in); got != c.value {
			t.Errorf("CEFValueEscape(%q) = %q, want %q", c.in, got, c.value)
		}
	}
}

func TestCEFTransfer(t *testing.T) {
	r := Record{V: 1, ID: "gw-1", Time: time.UnixMilli(1700000000123).UTC(), Kind: KindTransfer,
		Session: "s1", Listener: "main", Client: "[::1]:40000", User: "alice",
		Transfer: &Transfer{Verb: "STOR", Direction: "upload", Path: "/in/a=b|c.txt", Bytes: 42, Complete: true, SHA256: "ab12", Code: 226}}
	line := CEF(&r, "1.2.3")
	want := `CEF:0|ftpsgate|ftpsgate|1.2.3|transfer:upload|Transfer upload|3|rt=1700000000123 src=::1 spt=40000 suser=alice act=STOR fname=/in/a\=b|c.txt fsize=42 fileHash=ab12 outcome=success cs1=s1 cs1Label=session cs2=gw-1 cs2Label=recordId cs3=main cs3Label=listener`
	if line != want {
		t.Fatalf("got\n%s\nwant\n%s", line, want)
	}
	h, ext, err := parseCEF(line)
	if err != nil || len(h) != 7 || ext["fname"] != "/in/a=b|c.txt" {
		t.Fatalf("parse: %v %q %q", err, h, ext)
	}
	r.Transfer.Complete = false
	if h, _, _ := parseCEF(CEF(&r, "1")); h[6] != "7" || h[5] != "Transfer upload incomplete" {
		t.Fatalf("incomplete transfer header %q", h)
	}
}

// parseCEF splits a CEF line into its 7 header fields after "CEF:0"
// (unescaped) and its extension (unescaped values), as a receiver does.
func parseCEF(line string) ([]string, map[string]string, error) {
	rest, ok := strings.CutPrefix(line, "CEF:")
	if !ok {
		return nil, nil, errString("no CEF: prefix")
	}
	var fields []string
	var cur strings.Builder
	i := 0
	for ; i < len(rest) && len(fields) < 7; i++ {
		switch c := rest[i]; {
		case c == '\\' && i+1 < len(rest):
			i++
			cur.WriteByte(rest[i])
		case c == '|':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(fields) != 7 {
		return nil, nil, errString("short header")
	}
	ext := rest[i:]
	// Positions of unescaped '='.
	var eqs []int
	for j := 0; j < len(ext); j++ {
		if ext[j] == '\\' {
			j++
			continue
		}
		if ext[j] == '=' {
			eqs = append(eqs, j)
		}
	}
	m := map[string]string{}
	keyStart := func(eq int) int { return strings.LastIndexByte(ext[:eq], ' ') + 1 }
	for n, eq := range eqs {
		k := ext[keyStart(eq):eq]
		end := len(ext)
		if n+1 < len(eqs) {
			end = keyStart(eqs[n+1]) - 1
		}
		if end < eq+1 {
			return nil, nil, errString("bad extension")
		}
		v := ext[eq+1 : end]
		var u strings.Builder
		for j := 0; j < len(v); j++ {
			if v[j] == '\\' && j+1 < len(v) {
				j++
				switch v[j] {
				case 'n':
					u.WriteByte('\n')
				case 'r':
					u.WriteByte('\r')
				default:
					u.WriteByte(v[j])
				}
				continue
			}
			u.WriteByte(v[j])
		}
		m[k] = u.String()
	}
	return fields, m, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// FuzzCEF: whatever the user, path and command text, a receiver's parse
// of the line gives the 7 header fields and the values back unchanged.
func FuzzCEF(f *testing.F) {
	f.Add("alice", "/a b/c.txt", "STOR x=y", "STOR")
	f.Add(`a\`, `|=\n`, "x\ny\r", `V|\`)
	f.Fuzz(func(t *testing.T, user, path, text, verb string) {
		r := Record{Kind: KindCommand, ID: "id", User: user, Client: "127.0.0.1:1",
			Command: &Command{Verb: verb, Text: text, Code: 200}}
		h, ext, err := parseCEF(CEF(&r, "v"))
		if err != nil {
			t.Fatalf("%v: %q", err, CEF(&r, "v"))
		}
		if len(h) != 7 || h[4] != CEFHeaderUnescapedLineEnds("command:"+verb) {
			t.Fatalf("header %q", h)
		}
		user, text = cefControls(user), cefControls(text)
		if user != "" && ext["suser"] != user {
			t.Fatalf("suser %q, want %q (line %q)", ext["suser"], user, CEF(&r, "v"))
		}
		if text != "" && ext["msg"] != text {
			t.Fatalf("msg %q, want %q (line %q)", ext["msg"], text, CEF(&r, "v"))
		}
	})
}

// CEFHeaderUnescapedLineEnds is what a header field reads as after
// parsing: line ends and other control characters became spaces.
func CEFHeaderUnescapedLineEnds(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// cefControls is what a value reads as after parsing: control characters
// other than line ends became spaces.
func cefControls(s string) string {
	b := []byte(s)
	for i, c := range b {
		if (c < 0x20 && c != '\n' && c != '\r') || c == 0x7f {
			b[i] = ' '
		}
	}
	return string(b)
}

// An inspection finding: a block is a failure, an alert a success; both
// warnings in syslog; the message names the detector and count.
func TestCEFInspection(t *testing.T) {
	r := Record{V: 1, ID: "gw-2", Time: time.UnixMilli(1700000000123).UTC(), Kind: KindInspection, Session: "s1", User: "alice",
		Inspection: &Inspection{Path: "/in/x.txt", Direction: "upload", Detector: "cards", Count: 11, Action: "block", Ref: "abc123"}}
	h, ext, err := parseCEF(CEF(&r, "1"))
	if err != nil || h[4] != "inspection:block" || h[5] != "Content inspection block" || ext["outcome"] != "failure" ||
		ext["msg"] != "upload cards=11 abc123" || ext["act"] != "block" {
		t.Fatalf("%q %q %v", h, ext, err)
	}
	if SyslogSeverity(&r) != sevWarning {
		t.Fatal("a block is not a warning")
	}
	r.Inspection.Action, r.Inspection.Ref = "alert", ""
	if h, ext, _ := parseCEF(CEF(&r, "1")); ext["outcome"] != "success" || h[4] != "inspection:alert" || SyslogSeverity(&r) != sevWarning {
		t.Fatalf("alert: %q %q", h, ext)
	}
}
