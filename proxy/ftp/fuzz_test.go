package ftp

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets check that nothing panics and that what parses formats
// back to something that parses to the same value.

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"NOOP", "retr  file ", "PASS secret", "SITE  PSWD old new", "", " ", "ABCDEFGHI x", "RETR a\rb", "EPRT |1|1.2.3.4|21|", "\xff\xf4ABOR",
		"USER anonymou\xff\xf4s", "RETR \xf0\x9f\x98\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		c, err := ParseCommand(line)
		if err != nil {
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("ParseCommand(%q): error %v does not wrap ErrMalformedCommand", line, err)
			}
			return
		}
		if c.Verb != strings.ToUpper(c.Verb) || strings.ContainsAny(c.Arg, "\r\n\x00") || strings.IndexByte(c.String(), 0xFF) >= 0 {
			t.Fatalf("ParseCommand(%q) = %+v", line, c)
		}
		again, err := ParseCommand(c.String())
		if err != nil || again != c {
			t.Fatalf("ParseCommand(%q) = %+v; String %q parses to %+v, %v", line, c, c.String(), again, err)
		}
		var buf bytes.Buffer
		if err := WriteCommand(&buf, c); err != nil {
			t.Fatalf("WriteCommand(%+v): %v", c, err)
		}
		l, err := NewReader(&buf).ReadLine()
		if err != nil && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("ReadLine of written %+v: %v", c, err)
		}
		if err == nil {
			if back, err := ParseCommand(l); err != nil || back != c {
				t.Fatalf("wire round trip of %+v: %+v, %v", c, back, err)
			}
		}
		log := c.LogString()
		switch up := strings.ToUpper(c.Verb); {
		case strings.HasPrefix(up, "PASS") || strings.HasPrefix(up, "ACCT"):
			if log != c.Verb[:4]+"****" && log != c.Verb[:4]+" ****" && log != c.Verb {
				t.Fatalf("LogString(%+v) = %q: not masked", c, log)
			}
		case !KnownVerb(c.Verb):
			if c.Arg != "" && log != c.Verb+" ****" {
				t.Fatalf("LogString(%+v) = %q: unknown verb's argument logged", c, log)
			}
		case up == "SITE" && strings.Contains(log, "****"):
			if !strings.HasPrefix(c.String(), strings.TrimSuffix(log, "****")) {
				t.Fatalf("LogString(%+v) = %q", c, log)
			}
		default:
			if log != c.String() {
				t.Fatalf("LogString(%+v) = %q, want %q", c, log, c.String())
			}
		}
	})
}

func FuzzReadCommand(f *testing.F) {
	for _, s := range []string{
		"USER bob\r\nPASS x\r\n", "\xff\xf4\xff\xf2ABOR\r\n", "\xff\xf4\xf2ABOR\n", "RETR a\xff\xffb\r\n",
		"\xff\xfb\x01NOOP\r\n", "NOOP", "RETR \xf2\r\n", "\r\n\r\n", strings.Repeat("A", MaxLineLength+3) + "\r\nNOOP\r\n",
		"USER anonymou\xff\xff\xf4s\r\n", "ST\xff\xf1AT\r\n", "\xff\xfa\x18\xff\xf0NOOP\r\n", "STOR \xf0\x9f\x98\x80\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for i := 0; i <= len(data); i++ {
			c, err := r.ReadCommand()
			if r.Buffered() < 0 || r.Buffered() > len(data) {
				t.Fatalf("Buffered() = %d", r.Buffered())
			}
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedCommand) && !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("ReadCommand: unexpected error %v", err)
				}
				continue
			}
			// Nothing the backend could read as Telnet is ever returned.
			if strings.IndexByte(c.String(), 0xFF) >= 0 {
				t.Fatalf("ReadCommand = %+v: holds 0xFF", c)
			}
			if again, err := ParseCommand(c.String()); err != nil || again != c {
				t.Fatalf("ReadCommand = %+v; String %q parses to %+v, %v", c, c.String(), again, err)
			}
			// Its wire form reads back as itself: the backend sees the same command.
			var buf bytes.Buffer
			if err := WriteCommand(&buf, c); err != nil {
				t.Fatalf("WriteCommand(%+v): %v", c, err)
			}
			if back, err := NewReader(&buf).ReadCommand(); err == nil && back != c {
				t.Fatalf("ReadCommand = %+v; written and read again: %+v", c, back)
			}
		}
		t.Fatalf("ReadCommand did not reach the end of %d bytes", len(data))
	})
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"220 ready\r\n", "200\r\n", "230-a\r\n230-b\r\n230 c\r\n", vsftpdFEAT, proftpdFEAT, pureftpdFEAT, pureftpdBanner,
		"226-x\r\n226\r\n", "226-x\r\n226x\r\n226 y\r\n", "hello\r\n", "230-a\r\n", "220 a\rb\r\n", "250-\n250 \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		for i := 0; i <= len(data); i++ {
			rep, err := r.ReadReply()
			if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err != nil {
				if !errors.Is(err, ErrMalformedReply) {
					t.Fatalf("ReadReply: unexpected error %v", err)
				}
				return // the stream may be out of sync after a malformed reply
			}
			checkReply(t, rep)
		}
		t.Fatalf("ReadReply did not reach the end of %d bytes", len(data))
	})
}

// checkReply checks the invariants of a reply read from the wire, and that
// writing it and reading it back is stable.
func checkReply(t *testing.T, rep Reply) {
	t.Helper()
	if rep.Code < 100 || rep.Code > 599 || len(rep.Lines) == 0 {
		t.Fatalf("ReadReply = %+v", rep)
	}
	for _, l := range rep.Lines {
		if len(l) >= MaxLineLength-4 {
			return // padding could push it over the line limit
		}
	}
	wire := rep.AppendWire(nil)
	r1 := readOne(t, wire)
	if r1.Code != rep.Code || len(r1.Lines) != len(rep.Lines) {
		t.Fatalf("reply %+v wrote %q, read back as %+v", rep, wire, r1)
	}
	wire2 := r1.AppendWire(nil)
	if r2 := readOne(t, wire2); !reflect.DeepEqual(r1, r2) {
		t.Fatalf("unstable: %+v wrote %q, read as %+v", r1, wire2, r2)
	}
}

// readOne reads exactly one reply from wire.
func readOne(t *testing.T, wire []byte) Reply {
	t.Helper()
	r := NewReader(bytes.NewReader(wire))
	rep, err := r.ReadReply()
	if err != nil {
		t.Fatalf("reading back %q: %v", wire, err)
	}
	if _, err := r.ReadLine(); err != io.EOF {
		t.Fatalf("%q is more than one reply (%v)", wire, err)
	}
	return rep
}

func FuzzParsePASV(f *testing.F) {
	for _, s := range []string{
		"Entering Passive Mode (127,0,0,1,195,80).", "=127,0,0,1,195,80", "(127, 0 ,0,1,195,80)",
		"(1,2,3,4,0,0)", "1234,1,2,3,4,5,6", "(256,1,1,1,1,1)", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ap, err := ParsePASV(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedReply) {
				t.Fatalf("ParsePASV(%q): %v does not wrap ErrMalformedReply", text, err)
			}
			return
		}
		if !ap.Addr().Is4() || ap.Port() == 0 {
			t.Fatalf("ParsePASV(%q) = %v", text, ap)
		}
		s, err := FormatPASV(ap)
		if err != nil {
			t.Fatalf("FormatPASV(%v): %v", ap, err)
		}
		if again, err := ParsePASV(s); err != nil || again != ap {
			t.Fatalf("ParsePASV(%q) = %v; formatted %q parses to %v, %v", text, ap, s, again, err)
		}
	})
}

func FuzzParsePORT(f *testing.F) {
	for _, s := range []string{"127,0,0,1,195,80", " 10, 0, 0, 1, 4, 0 ", "1,2,3,4,0,0", "1,2,3,4,5", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := ParsePORT(arg)
		if err != nil {
			if !errors.Is(err, ErrMalformedCommand) {
				t.Fatalf("ParsePORT(%q): %v does not wrap ErrMalformedCommand", arg, err)
			}
			return
		}
		s, err := FormatPORT(ap)
		if err != nil {
			t.Fatalf("FormatPORT(%v): %v", ap, err)
		}
		if again, err := ParsePORT(s); err != nil || again != ap {
			t.Fatalf("ParsePORT(%q) = %v; formatted %q parses to %v, %v", arg, ap, s, again, err)
		}
	})
}

func FuzzParseEPSV(f *testing.F) {
	for _, s := range []string{"Entering Extended Passive Mode (|||6446|)", "(!!!1!)", "(|||0|)", "((|||21|)", "(|||65536|)", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		port, err := ParseEPSV(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedReply) {
				t.Fatalf("ParseEPSV(%q): %v does not wrap ErrMalformedReply", text, err)
			}
			return
		}
		if port == 0 {
			t.Fatalf("ParseEPSV(%q) = 0", text)
		}
		if again, err := ParseEPSV(FormatEPSV(port)); err != nil || again != port {
			t.Fatalf("ParseEPSV(%q) = %d; formatted parses to %d, %v", text, port, again, err)
		}
	})
}

func FuzzParseEPRT(f *testing.F) {
	for _, s := range []string{
		"|1|132.235.1.2|6275|", "|2|1080::8:800:200C:417A|5282|", "!2!::ffff:1.2.3.4!21!", "|3|x|1|",
		"|2|fe80::1%eth0|21|", "|1|1.2.3.4|0|", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		ap, err := ParseEPRT(arg)
		if err != nil {
			if !errors.Is(err, ErrMalformedCommand) && !errors.Is(err, ErrUnsupportedProtocol) {
				t.Fatalf("ParseEPRT(%q): unexpected error %v", arg, err)
			}
			return
		}
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().Zone() != "" {
			t.Fatalf("ParseEPRT(%q) = %v", arg, ap)
		}
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		s := FormatEPRT(ap)
		if again, err := ParseEPRT(s); err != nil || again != want {
			t.Fatalf("ParseEPRT(%q) = %v; formatted %q parses to %v, %v", arg, ap, s, again, err)
		}
	})
}

func FuzzParseEPSVArg(f *testing.F) {
	for _, s := range []string{"", "ALL", "all", "1", "2", "3", "01", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		all, proto, err := ParseEPSVArg(arg)
		switch {
		case err != nil:
			if !errors.Is(err, ErrMalformedCommand) && !errors.Is(err, ErrUnsupportedProtocol) {
				t.Fatalf("ParseEPSVArg(%q): unexpected error %v", arg, err)
			}
		case all && proto != 0, proto != 0 && proto != 1 && proto != 2:
			t.Fatalf("ParseEPSVArg(%q) = %v, %d", arg, all, proto)
		}
	})
}
