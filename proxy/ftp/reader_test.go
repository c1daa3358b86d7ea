package ftp

import (
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// lineResult is one expected ReadLine outcome.
type lineResult struct {
	line string
	err  error
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("a", MaxLineLength)
	tests := []struct {
		name  string
		input string
		want  []lineResult
	}{
		{"CRLF", "USER bob\r\nPASS x\r\n", []lineResult{{"USER bob", nil}, {"PASS x", nil}, {"", io.EOF}}},
		{"bare LF", "USER bob\nPASS x\n", []lineResult{{"USER bob", nil}, {"PASS x", nil}, {"", io.EOF}}},
		{"mixed", "A\r\nB\nC\r\n", []lineResult{{"A", nil}, {"B", nil}, {"C", nil}, {"", io.EOF}}},
		{"empty lines", "\r\n\n", []lineResult{{"", nil}, {"", nil}, {"", io.EOF}}},
		{"only the line end is removed", "NOOP\r\r\n", []lineResult{{"NOOP\r", nil}, {"", io.EOF}}},
		{"CR inside", "a\rb\r\n", []lineResult{{"a\rb", nil}, {"", io.EOF}}},
		{"empty input", "", []lineResult{{"", io.EOF}, {"", io.EOF}}},
		{"partial final line", "NOOP\r\nQUI", []lineResult{{"NOOP", nil}, {"", io.ErrUnexpectedEOF}, {"", io.EOF}}},
		{"partial CR", "NOOP\r", []lineResult{{"", io.ErrUnexpectedEOF}}},
		{"longest line", long + "\r\nNOOP\r\n", []lineResult{{long, nil}, {"NOOP", nil}, {"", io.EOF}}},
		{"longest line, bare LF", long + "\nNOOP\n", []lineResult{{long, nil}, {"NOOP", nil}}},
		{"one byte too long", long + "a\r\nNOOP\r\n", []lineResult{{"", ErrLineTooLong}, {"NOOP", nil}, {"", io.EOF}}},
		{"one byte too long, bare LF", long + "a\nNOOP\n", []lineResult{{"", ErrLineTooLong}, {"NOOP", nil}}},
		{"too long then in sync", strings.Repeat("x", 5*MaxLineLength+17) + "\r\nRETR f\r\n", []lineResult{{"", ErrLineTooLong}, {"RETR f", nil}, {"", io.EOF}}},
		{"two too long", strings.Repeat("x", 10000) + "\n" + strings.Repeat("y", 9000) + "\r\nok\r\n", []lineResult{{"", ErrLineTooLong}, {"", ErrLineTooLong}, {"ok", nil}}},
		{"too long without end", strings.Repeat("x", 10000), []lineResult{{"", io.ErrUnexpectedEOF}, {"", io.EOF}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Both in one read and in one-byte reads.
			for _, src := range []io.Reader{strings.NewReader(tt.input), &oneByteReader{s: tt.input}} {
				r := NewReader(src)
				for i, want := range tt.want {
					got, err := r.ReadLine()
					if got != want.line || !errors.Is(err, want.err) || (want.err == nil && err != nil) {
						t.Fatalf("%T: ReadLine #%d = %q, %v; want %q, %v", src, i, truncate(got, 20), err, truncate(want.line, 20), want.err)
					}
				}
			}
		})
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// scriptReader returns its chunks one per Read (a chunk larger than the
// reader's buffer over several), an error chunk as an error.
type scriptReader struct{ steps []any }

func (r *scriptReader) Read(p []byte) (int, error) {
	if len(r.steps) == 0 {
		return 0, io.EOF
	}
	switch s := r.steps[0].(type) {
	case error:
		r.steps = r.steps[1:]
		return 0, s
	case string:
		n := copy(p, s)
		if n < len(s) {
			r.steps[0] = s[n:]
		} else {
			r.steps = r.steps[1:]
		}
		return n, nil
	}
	panic("bad step")
}

func TestReadLineKeepsPartialLineAcrossErrors(t *testing.T) {
	timeout := os.ErrDeadlineExceeded
	r := NewReader(&scriptReader{steps: []any{"RE", timeout, "TR fi", timeout, "le\r\n", net.ErrClosed}})
	for i := 0; i < 2; i++ {
		if _, err := r.ReadLine(); !errors.Is(err, timeout) {
			t.Fatalf("ReadLine #%d: %v, want deadline", i, err)
		}
	}
	if n := r.Buffered(); n != len("RETR fi") {
		t.Errorf("Buffered() = %d, want %d", n, len("RETR fi"))
	}
	if c, err := r.ReadCommand(); err != nil || c != (Command{Verb: "RETR", Arg: "file"}) {
		t.Fatalf("ReadCommand = %+v, %v", c, err)
	}
	if _, err := r.ReadLine(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadLine: %v, want net.ErrClosed", err)
	}
}

func TestReadLineDiscardsAcrossErrors(t *testing.T) {
	timeout := os.ErrDeadlineExceeded
	r := NewReader(&scriptReader{steps: []any{strings.Repeat("x", 3000), strings.Repeat("x", 3000), timeout, "xx\r\nNOOP\r\n"}})
	if _, err := r.ReadLine(); !errors.Is(err, timeout) {
		t.Fatalf("ReadLine: %v, want deadline", err)
	}
	if _, err := r.ReadLine(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("ReadLine: %v, want ErrLineTooLong", err)
	}
	if l, err := r.ReadLine(); l != "NOOP" || err != nil {
		t.Fatalf("ReadLine = %q, %v", l, err)
	}
}

func TestReaderDeadlineOnConn(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	r := NewReader(server)
	if err := server.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadCommand(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadCommand: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := server.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = client.Write([]byte("QUIT\r\n")); client.Close() }()
	if c, err := r.ReadCommand(); err != nil || c.Verb != "QUIT" {
		t.Fatalf("ReadCommand = %+v, %v", c, err)
	}
	if _, err := r.ReadCommand(); err != io.EOF {
		t.Fatalf("ReadCommand: %v, want io.EOF", err)
	}
	server.Close()
	if _, err := r.ReadCommand(); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("ReadCommand after Close: %v, want io.ErrClosedPipe", err)
	}
}

func TestBuffered(t *testing.T) {
	r := NewReader(strings.NewReader("AUTH TLS\r\nUSER injected\r\n"))
	if c, err := r.ReadCommand(); err != nil || c.String() != "AUTH TLS" {
		t.Fatalf("ReadCommand = %+v, %v", c, err)
	}
	if n := r.Buffered(); n != len("USER injected\r\n") {
		t.Errorf("Buffered() = %d, want %d", n, len("USER injected\r\n"))
	}
	r = NewReader(strings.NewReader("AUTH TLS\r\n"))
	if _, err := r.ReadCommand(); err != nil {
		t.Fatal(err)
	}
	if n := r.Buffered(); n != 0 {
		t.Errorf("Buffered() = %d, want 0", n)
	}
}

func TestReadCommand(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Command
		wantErr error
	}{
		{"plain", "RETR a.txt\r\n", Command{Verb: "RETR", Arg: "a.txt"}, nil},
		{"lower case, bare LF", "noop\n", Command{Verb: "NOOP"}, nil},
		{"IAC IP IAC DM ABOR", "\xff\xf4\xff\xf2ABOR\r\n", Command{Verb: "ABOR"}, nil},
		{"IP, urgent IAC taken out of band", "\xff\xf4\xf2ABOR\r\n", Command{Verb: "ABOR"}, nil},
		{"Synch before STAT", "\xff\xf4\xff\xf2STAT\r\n", Command{Verb: "STAT"}, nil},
		{"WILL option removed", "\xff\xfb\x01NOOP\r\n", Command{Verb: "NOOP"}, nil},
		{"DO, DONT, WONT removed", "\xff\xfd\x03\xff\xfe\x18\xff\xfc\x01NOOP\r\n", Command{Verb: "NOOP"}, nil},
		{"option byte 0xFF", "\xff\xfb\xffNOOP\r\n", Command{Verb: "NOOP"}, nil},
		{"IAC NOP, IAC SE in front", "\xff\xf1\xff\xf0NOOP\r\n", Command{Verb: "NOOP"}, nil},
		{"DM in the argument stays", "RETR \xf2\r\n", Command{Verb: "RETR", Arg: "\xf2"}, nil},
		{"0xF0-0xFE in the argument stay", "RETR \xf0\xf4\xf5\xfa\xfe\r\n", Command{Verb: "RETR", Arg: "\xf0\xf4\xf5\xfa\xfe"}, nil},
		{"UTF-8 four-byte name", "STOR \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf.txt\r\n", Command{Verb: "STOR", Arg: "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf.txt"}, nil},
		{"UTF-8 name after IP", "\xff\xf4\xf2RETR Gr\xc3\xbc\xc3\x9fe\r\n", Command{Verb: "RETR", Arg: "Gr\xc3\xbc\xc3\x9fe"}, nil},
		{"Latin-1 name", "RETR Gr\xfc\xdfe\r\n", Command{Verb: "RETR", Arg: "Gr\xfc\xdfe"}, nil},
		// What a Telnet-aware backend would read differently is refused.
		{"IAC IAC in the argument", "RETR a\xff\xffb\r\n", Command{}, ErrMalformedCommand},
		{"IAC IAC IP: anonymous at ProFTPD", "USER anonymou\xff\xff\xf4s\r\n", Command{}, ErrMalformedCommand},
		{"IAC IP in the argument", "USER anonymou\xff\xf4s\r\n", Command{}, ErrMalformedCommand},
		{"IAC IAC DM in the argument", "USER a\xff\xff\xf2b\r\n", Command{}, ErrMalformedCommand},
		{"IAC WILL in the argument", "USER anonymou\xff\xfb\xf4s\r\n", Command{}, ErrMalformedCommand},
		{"IAC NOP inside the verb", "ST\xff\xf1AT\r\n", Command{}, ErrMalformedCommand},
		{"DO inside the verb", "NO\xff\xfe\x18OP\r\n", Command{}, ErrMalformedCommand},
		{"lone IAC at the end", "NOOP\xff\r\n", Command{}, ErrMalformedCommand},
		{"lone IAC in the argument", "RETR a\xffb\r\n", Command{}, ErrMalformedCommand},
		{"IAC IAC in front", "\xff\xffNOOP\r\n", Command{}, ErrMalformedCommand},
		{"IAC SB in front", "\xff\xfa\x18\x01\xff\xf0NOOP\r\n", Command{}, ErrMalformedCommand},
		{"IAC before a letter", "\xffNOOP\r\n", Command{}, ErrMalformedCommand},
		{"WILL without option", "\xff\xfb\r\n", Command{}, ErrMalformedCommand},
		{"lone IAC", "\xff\r\n", Command{}, ErrMalformedCommand},
		{"empty", "\r\n", Command{}, ErrMalformedCommand},
		{"only Telnet", "\xff\xf4\xff\xf2\r\n", Command{}, ErrMalformedCommand},
		{"too long", strings.Repeat("A", MaxLineLength+1) + "\r\n", Command{}, ErrLineTooLong},
		{"EOF", "", Command{}, io.EOF},
		{"truncated", "RET", Command{}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewReader(strings.NewReader(tt.input)).ReadCommand()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadCommand = %+v, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ReadCommand = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestReadCommandStaysInSync(t *testing.T) {
	in := "USER bob\r\n" + strings.Repeat("Z", 3*MaxLineLength) + "\r\nbad!\r\n\xff\xf4\xff\xf2ABOR\r\nQUIT\n"
	r := NewReader(strings.NewReader(in))
	want := []struct {
		verb string
		err  error
	}{{"USER", nil}, {"", ErrLineTooLong}, {"", ErrMalformedCommand}, {"ABOR", nil}, {"QUIT", nil}, {"", io.EOF}}
	for i, w := range want {
		c, err := r.ReadCommand()
		if c.Verb != w.verb || !errors.Is(err, w.err) || (w.err == nil && err != nil) {
			t.Fatalf("ReadCommand #%d = %+v, %v; want %s, %v", i, c, err, w.verb, w.err)
		}
	}
}

// Replies as real servers send them.
const (
	vsftpdFEAT = "211-Features:\r\n AUTH TLS\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n PBSZ\r\n PROT\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"

	proftpdFEAT = "211-Features:\r\n LANG en-US*\r\n MDTM\r\n MFMT\r\n TVFS\r\n UTF8\r\n MFF modify;UNIX.group;UNIX.mode;\r\n" +
		" MLST modify*;perm*;size*;type*;unique*;UNIX.group*;UNIX.mode*;UNIX.owner*;\r\n SITE MKDIR\r\n SITE RMDIR\r\n" +
		" SITE UTIME\r\n SITE SYMLINK\r\n REST STREAM\r\n SITE COPY\r\n SIZE\r\n AUTH TLS\r\n CCC\r\n PBSZ\r\n PROT\r\n211 End\r\n"

	pureftpdFEAT = "211-Extensions supported:\r\n EPRT\r\n IDLE\r\n MDTM\r\n SIZE\r\n MFMT\r\n REST STREAM\r\n" +
		" MLST type*;size*;sizd*;modify*;UNIX.mode*;UNIX.uid*;UNIX.gid*;unique*;\r\n MLSD\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n" +
		" UTF8\r\n TVFS\r\n ESTA\r\n PASV\r\n EPSV\r\n SPSV\r\n ESTP\r\n211 End.\r\n"

	pureftpdBanner = "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n" +
		"220-You are user number 1 of 50 allowed.\r\n" +
		"220-Local time is now 10:00. Server port: 21.\r\n" +
		"220 You will be disconnected after 15 minutes of inactivity.\r\n"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  Reply
	}{
		{"single", "220 (vsFTPd 3.0.5)\r\n", Reply{220, []string{"(vsFTPd 3.0.5)"}}},
		{"code alone", "200\r\n", Reply{200, []string{""}}},
		{"code and space", "200 \r\n", Reply{200, []string{""}}},
		{"bare LF", "227 Entering Passive Mode (127,0,0,1,195,80).\n", Reply{227, []string{"Entering Passive Mode (127,0,0,1,195,80)."}}},
		{"multi", "230-Welcome\r\n  to here\r\n230 Login successful.\r\n", Reply{230, []string{"Welcome", "  to here", "Login successful."}}},
		{"empty first text", "230-\r\n230 \r\n", Reply{230, []string{"", ""}}},
		{"ends on code alone", "250-a\r\nb\r\n250\r\n", Reply{250, []string{"a", "b", ""}}},
		{
			"middle lines with digits",
			"226-Transfer\r\n123 files\r\n226-still going\r\n2261 no\r\n 226 padded\r\n226x\r\n150 other\r\n226 Done\r\n",
			Reply{226, []string{"Transfer", "123 files", "226-still going", "2261 no", " 226 padded", "226x", "150 other", "Done"}},
		},
		{"Pure-FTPd banner", pureftpdBanner, Reply{220, []string{
			"--------- Welcome to Pure-FTPd [privsep] [TLS] ----------",
			"220-You are user number 1 of 50 allowed.",
			"220-Local time is now 10:00. Server port: 21.",
			"You will be disconnected after 15 minutes of inactivity.",
		}}},
		{"vsftpd FEAT", vsftpdFEAT, Reply{211, []string{"Features:", " AUTH TLS", " EPRT", " EPSV", " MDTM", " PASV", " PBSZ", " PROT", " REST STREAM", " SIZE", " TVFS", " UTF8", "End"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.input + "200 next\r\n"))
			got, err := r.ReadReply()
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ReadReply = %+v, %v; want %+v", got, err, tt.want)
			}
			next, err := r.ReadReply()
			if err != nil || next.Code != 200 || next.Text() != "next" {
				t.Fatalf("next ReadReply = %+v, %v", next, err)
			}
			if _, err := r.ReadReply(); err != io.EOF {
				t.Fatalf("ReadReply at the end: %v, want io.EOF", err)
			}
		})
	}
}

func TestReadReplyErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  error
	}{
		{"EOF", "", io.EOF},
		{"no code", "hello\r\n", ErrMalformedReply},
		{"short", "22\r\n", ErrMalformedReply},
		{"letters", "2x0 ok\r\n", ErrMalformedReply},
		{"code 600", "600 x\r\n", ErrMalformedReply},
		{"code 099", "099 x\r\n", ErrMalformedReply},
		{"four digits", "2200 x\r\n", ErrMalformedReply},
		{"bad separator", "220x\r\n", ErrMalformedReply},
		{"empty line", "\r\n", ErrMalformedReply},
		{"truncated first line", "220 rea", io.ErrUnexpectedEOF},
		{"truncated multi-line", "230-Welcome\r\nmore\r\n", io.ErrUnexpectedEOF},
		{"truncated last line", "230-Welcome\r\n230 ok", io.ErrUnexpectedEOF},
		{"other code does not end", "230-Welcome\r\n231 ok\r\n", io.ErrUnexpectedEOF},
		{"too long first line", "220 " + strings.Repeat("x", MaxLineLength) + "\r\n", ErrLineTooLong},
		{"too long middle line", "220-a\r\n" + strings.Repeat("x", MaxLineLength+1) + "\r\n220 b\r\n", ErrMalformedReply},
		{"too many lines", "220-a\r\n" + strings.Repeat("x\r\n", maxReplyLines) + "220 b\r\n", ErrMalformedReply},
		{"too many bytes", "220-a\r\n" + strings.Repeat(strings.Repeat("x", 4000)+"\r\n", 300) + "220 b\r\n", ErrMalformedReply},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewReader(strings.NewReader(tt.input)).ReadReply()
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadReply = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
	// A too-long line is both.
	_, err := NewReader(strings.NewReader(strings.Repeat("2", MaxLineLength+1) + "\r\n")).ReadReply()
	if !errors.Is(err, ErrMalformedReply) || !errors.Is(err, ErrLineTooLong) {
		t.Errorf("too-long reply line: %v, want ErrMalformedReply and ErrLineTooLong", err)
	}
	// The offending line is quoted and cut to 80 bytes.
	_, err = NewReader(strings.NewReader("HTTP/1.1 400 " + strings.Repeat("y", 200) + "\r\n")).ReadReply()
	if err == nil || !strings.Contains(err.Error(), `"HTTP/1.1 400 yyy`) || len(err.Error()) > 120 {
		t.Errorf("error %q should quote the line, truncated", err)
	}
}

func TestReadReplyDoesNotReadAhead(t *testing.T) {
	// A reply followed by a TLS handshake: ReadReply must stop at the reply.
	r := NewReader(strings.NewReader("234 AUTH TLS OK.\r\n\x16\x03\x01"))
	if rep, err := r.ReadReply(); err != nil || rep.Code != StatusAuthOK {
		t.Fatalf("ReadReply = %+v, %v", rep, err)
	}
	if r.Buffered() != 3 {
		t.Errorf("Buffered() = %d, want 3", r.Buffered())
	}
}
