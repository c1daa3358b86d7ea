package ftp

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestNewReply(t *testing.T) {
	tests := []struct {
		code  int
		text  string
		lines []string
	}{
		{200, "ok", []string{"ok"}},
		{200, "", []string{""}},
		{230, "a\nb\nc", []string{"a", "b", "c"}},
		{230, "a\r\nb", []string{"a", "b"}},
	}
	for _, tt := range tests {
		r := NewReply(tt.code, tt.text)
		if r.Code != tt.code || !reflect.DeepEqual(r.Lines, tt.lines) {
			t.Errorf("NewReply(%d, %q) = %+v, want lines %q", tt.code, tt.text, r, tt.lines)
		}
	}
	if got := NewReply(230, "a\nb").Text(); got != "a\nb" {
		t.Errorf("Text() = %q", got)
	}
}

func TestReplyClass(t *testing.T) {
	tests := []struct {
		code                  int
		class                 int
		preliminary, positive bool
	}{
		{150, 1, true, false},
		{226, 2, false, true},
		{331, 3, false, false},
		{421, 4, false, false},
		{550, 5, false, false},
	}
	for _, tt := range tests {
		r := NewReply(tt.code, "x")
		if r.Class() != tt.class || r.Preliminary() != tt.preliminary || r.Positive() != tt.positive {
			t.Errorf("%d: Class %d Preliminary %v Positive %v", tt.code, r.Class(), r.Preliminary(), r.Positive())
		}
	}
}

func TestReplyWire(t *testing.T) {
	tests := []struct {
		name string
		r    Reply
		want string
	}{
		{"single", NewReply(220, "ftpsgate ready"), "220 ftpsgate ready\r\n"},
		{"empty text", NewReply(200, ""), "200 \r\n"},
		{"no lines", Reply{Code: 200}, "200 \r\n"},
		{"multi", NewReply(211, "Features:\n MDTM\n SIZE\nEnd"), "211-Features:\r\n MDTM\r\n SIZE\r\n211 End\r\n"},
		{"two lines", NewReply(230, "Welcome\nLogged in"), "230-Welcome\r\n230 Logged in\r\n"},
		{
			"middle line that would end the reply",
			Reply{Code: 230, Lines: []string{"Hi", "230 early", "230", "230x", "230-fine", "231 other", "ok"}},
			"230-Hi\r\n 230 early\r\n 230\r\n 230x\r\n230-fine\r\n231 other\r\n230 ok\r\n",
		},
		{
			"CR and LF cannot leak",
			Reply{Code: 550, Lines: []string{"no\r\n200 such\rfile\n"}},
			"550 no  200 such file \r\n",
		},
		{
			"CR and LF in a middle line",
			Reply{Code: 250, Lines: []string{"a", "b\r\n250 x", "c"}},
			"250-a\r\nb  250 x\r\n250 c\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.r.AppendWire([]byte("prefix:")))
			if got != "prefix:"+tt.want {
				t.Errorf("AppendWire = %q, want %q", got, "prefix:"+tt.want)
			}
			var buf bytes.Buffer
			if err := WriteReply(&buf, tt.r); err != nil || buf.String() != tt.want {
				t.Errorf("WriteReply wrote %q, %v; want %q", buf.String(), err, tt.want)
			}
			if s := tt.r.String(); s != strings.TrimSuffix(tt.want, "\r\n") {
				t.Errorf("String() = %q", s)
			}
		})
	}
}

func TestWriteReplyBadCode(t *testing.T) {
	for _, code := range []int{0, 99, 600, 1000, -1} {
		var buf bytes.Buffer
		if err := WriteReply(&buf, NewReply(code, "x")); err == nil || buf.Len() != 0 {
			t.Errorf("WriteReply(code %d) wrote %q, %v; want an error and nothing", code, buf.String(), err)
		}
	}
	// AppendWire does not validate, but must not panic.
	_ = Reply{Code: -5}.AppendWire(nil)
	_ = Reply{Code: 12345}.AppendWire(nil)
}

// TestReplyRoundTrip writes replies and reads them back.
func TestReplyRoundTrip(t *testing.T) {
	replies := []Reply{
		NewReply(220, "ready"),
		NewReply(200, ""),
		NewReply(211, "Features:\n EPSV\n MLST type*;size*;\nEnd"),
		{Code: 230, Lines: []string{"Hi", "230-dash", "123 other code", "", "bye"}},
		{Code: 250, Lines: []string{"", ""}},
	}
	var buf bytes.Buffer
	for _, r := range replies {
		if err := WriteReply(&buf, r); err != nil {
			t.Fatal(err)
		}
	}
	rd := NewReader(&buf)
	for _, want := range replies {
		got, err := rd.ReadReply()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ReadReply = %+v, %v; want %+v", got, err, want)
		}
	}
}
