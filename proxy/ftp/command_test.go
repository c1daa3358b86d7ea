package ftp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		want    Command
		wantErr bool
	}{
		{line: "NOOP", want: Command{Verb: "NOOP"}},
		{line: "noop", want: Command{Verb: "NOOP"}},
		{line: "Retr file.txt", want: Command{Verb: "RETR", Arg: "file.txt"}},
		{line: "RETR  two leading spaces ", want: Command{Verb: "RETR", Arg: " two leading spaces "}},
		{line: "RETR ", want: Command{Verb: "RETR"}},
		{line: "STOR a b c", want: Command{Verb: "STOR", Arg: "a b c"}},
		{line: "AUTH TLS", want: Command{Verb: "AUTH", Arg: "TLS"}},
		{line: "ABCDEFGH x", want: Command{Verb: "ABCDEFGH", Arg: "x"}},
		{line: "xsha256 a b", want: Command{Verb: "XSHA256", Arg: "a b"}},
		{line: "XMD5 f", want: Command{Verb: "XMD5", Arg: "f"}},
		{line: "RETR \xe6\x97\xa5\xe6\x9c\xac.txt", want: Command{Verb: "RETR", Arg: "\xe6\x97\xa5\xe6\x9c\xac.txt"}},
		{line: "", wantErr: true},
		{line: " NOOP", wantErr: true},
		{line: "ABCDEFGHI", wantErr: true},
		{line: "RE1R x", wantErr: true},
		{line: "1ABC x", wantErr: true},
		{line: "XSHA256X x", wantErr: true},
		{line: "NOOP\r", wantErr: true},
		{line: "RETR a\rb", wantErr: true},
		{line: "RETR a\x00b", wantErr: true},
		{line: "\xffABOR", wantErr: true},
		{line: "RETR a\xffb", wantErr: true},
		{line: "USER anonymou\xff\xf4s", wantErr: true},
		{line: "RETR \xf0\x9f\x98\x80\xfe", want: Command{Verb: "RETR", Arg: "\xf0\x9f\x98\x80\xfe"}},
		{line: "GET/ HTTP/1.1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.line)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformedCommand) {
				t.Errorf("ParseCommand(%q) = %+v, %v; want ErrMalformedCommand", tt.line, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestCommandString(t *testing.T) {
	tests := []struct {
		c        Command
		str, log string
	}{
		{Command{Verb: "NOOP"}, "NOOP", "NOOP"},
		{Command{Verb: "RETR", Arg: " a "}, "RETR  a ", "RETR  a "},
		{Command{Verb: "PASS", Arg: "secret"}, "PASS secret", "PASS ****"},
		{Command{Verb: "pass", Arg: "secret"}, "pass secret", "pass ****"},
		{Command{Verb: "ACCT", Arg: "acc"}, "ACCT acc", "ACCT ****"},
		{Command{Verb: "PASS"}, "PASS", "PASS"},
		{Command{Verb: "USER", Arg: "bob"}, "USER bob", "USER bob"},
		// A password run together with its verb.
		{Command{Verb: "PASSABC"}, "PASSABC", "PASS****"},
		{Command{Verb: "PASSABC", Arg: "x"}, "PASSABC x", "PASS****"},
		{Command{Verb: "passw", Arg: "x"}, "passw x", "pass****"},
		{Command{Verb: "ACCTX"}, "ACCTX", "ACCT****"},
		// Unknown verbs: the name only.
		{Command{Verb: "XYZZY", Arg: "hunter2"}, "XYZZY hunter2", "XYZZY ****"},
		{Command{Verb: "XYZZY"}, "XYZZY", "XYZZY"},
		{Command{Verb: "PAS", Arg: "hunter2"}, "PAS hunter2", "PAS ****"},
		// Known verbs, extensions included, keep their argument.
		{Command{Verb: "MFMT", Arg: "20200101000000 a"}, "MFMT 20200101000000 a", "MFMT 20200101000000 a"},
		{Command{Verb: "xcwd", Arg: "d"}, "xcwd d", "xcwd d"},
		{Command{Verb: "SITE", Arg: "CHMOD 644 a"}, "SITE CHMOD 644 a", "SITE CHMOD 644 a"},
		// SITE commands that change a password.
		{Command{Verb: "SITE", Arg: "PSWD old new"}, "SITE PSWD old new", "SITE PSWD ****"},
		{Command{Verb: "site", Arg: "passwd new"}, "site passwd new", "site passwd ****"},
		{Command{Verb: "SITE", Arg: "PSWD"}, "SITE PSWD", "SITE PSWD"},
		{Command{Verb: "SITE", Arg: "  PSWD  old"}, "SITE   PSWD  old", "SITE   PSWD ****"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.c, got, tt.str)
		}
		if got := tt.c.LogString(); got != tt.log {
			t.Errorf("%+v.LogString() = %q, want %q", tt.c, got, tt.log)
		}
	}
}

// TestNoSecretInLogs: whatever a client sends after PASS, neither the
// command's LogString nor the error of a refused line holds the secret.
func TestNoSecretInLogs(t *testing.T) {
	const secret = "hunterTwo"
	for _, line := range []string{
		"PASS " + secret, "pass " + secret, "PASS\t" + secret, "PASS:" + secret, "PASS" + secret, "pAsS" + secret,
		"PASS  " + secret, "PASS " + secret + "\r", "PASS " + secret + "\x00", "PASS " + secret + "\xff", "PASS\xff" + secret,
		"ACCT " + secret, "ACCT:" + secret, "XPASS " + secret, secret + " x", "PASShunt", "PASShunt " + secret,
		"\xff\xf4PASS:" + secret, "PASS " + secret + "\xff\xf4",
	} {
		c, err := NewReader(strings.NewReader(line + "\r\n")).ReadCommand()
		logged := c.LogString() + " " + c.LogVerb()
		if err != nil {
			logged = err.Error()
		}
		if strings.Contains(logged, secret) || strings.Contains(strings.ToUpper(logged), "HUNT") {
			t.Errorf("line %q: logged as %q", line, logged)
		}
	}
}

func TestKnownVerb(t *testing.T) {
	for _, v := range []string{"USER", "retr", "EPSV", "MLSD", "HOST", "AUTH", "XCWD", "MFMT", "OPTS", "LANG"} {
		if !KnownVerb(v) {
			t.Errorf("KnownVerb(%q) = false", v)
		}
	}
	for _, v := range []string{"", "PASSX", "XYZZY", "GET", "hunter"} {
		if KnownVerb(v) {
			t.Errorf("KnownVerb(%q) = true", v)
		}
	}
}

func TestWriteCommand(t *testing.T) {
	tests := []struct {
		c       Command
		want    string
		wantErr bool
	}{
		{c: Command{Verb: "NOOP"}, want: "NOOP\r\n"},
		{c: Command{Verb: "RETR", Arg: " spaced "}, want: "RETR  spaced \r\n"},
		{c: Command{Verb: "RETR", Arg: "a\r\nDELE b"}, wantErr: true},
		{c: Command{Verb: "RETR", Arg: "a\nb"}, wantErr: true},
		{c: Command{Verb: "RETR", Arg: "a\x00b"}, wantErr: true},
		{c: Command{Verb: "NO\r\nOP"}, wantErr: true},
		{c: Command{Verb: ""}, wantErr: true},
		{c: Command{Verb: "RETR x"}, wantErr: true},
		{c: Command{Verb: "USER", Arg: "anonymou\xff\xf4s"}, wantErr: true},
		{c: Command{Verb: "RETR", Arg: "\xff"}, wantErr: true},
		{c: Command{Verb: "NO\xffOP"}, wantErr: true},
		{c: Command{Verb: "RETR", Arg: "\xf0\x9f\x98\x80\xf2"}, want: "RETR \xf0\x9f\x98\x80\xf2\r\n"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := WriteCommand(&buf, tt.c)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformedCommand) || buf.Len() != 0 {
				t.Errorf("WriteCommand(%+v) wrote %q, %v; want ErrMalformedCommand and nothing", tt.c, buf.String(), err)
			}
			continue
		}
		if err != nil || buf.String() != tt.want {
			t.Errorf("WriteCommand(%+v) wrote %q, %v; want %q", tt.c, buf.String(), err, tt.want)
		}
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrorsPassedOn(t *testing.T) {
	boom := errors.New("boom")
	if err := WriteCommand(errWriter{boom}, Command{Verb: "NOOP"}); !errors.Is(err, boom) {
		t.Errorf("WriteCommand: %v, want boom", err)
	}
	if err := WriteReply(errWriter{boom}, NewReply(200, "ok")); !errors.Is(err, boom) {
		t.Errorf("WriteReply: %v, want boom", err)
	}
}
