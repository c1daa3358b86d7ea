package ftp

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Reply is one whole reply from a server, single-line or multi-line
// (RFC 959 section 4.2).
type Reply struct {
	// Code is the three-digit reply code, 100 to 599.
	Code int
	// Lines holds the text of each line, without line ends, and has at
	// least one element. Lines[0] is the text after "ddd " or "ddd-" of the
	// first line; in a multi-line reply the last element is the text after
	// "ddd " of the final line, and the elements between are the middle
	// lines as received.
	Lines []string
}

// NewReply returns a reply with code and text. Each "\n" in text starts a
// new line (a "\r" before it is dropped), so a text with n "\n" gives a
// multi-line reply of n+1 lines.
func NewReply(code int, text string) Reply {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return Reply{Code: code, Lines: lines}
}

// Text returns the reply's lines joined by "\n".
func (r Reply) Text() string { return strings.Join(r.Lines, "\n") }

// Class returns the first digit of the code: 1 preliminary, 2 completion,
// 3 intermediate, 4 transient failure, 5 permanent failure.
func (r Reply) Class() int { return r.Code / 100 }

// Preliminary reports whether the reply is a positive preliminary (1xx):
// another reply follows for the same command.
func (r Reply) Preliminary() bool { return r.Class() == 1 }

// Positive reports whether the reply is a positive completion (2xx).
func (r Reply) Positive() bool { return r.Class() == 2 }

// String returns the reply's text in wire form without the final line
// end, for logs and error messages.
func (r Reply) String() string {
	b := r.AppendWire(nil)
	return string(b[:len(b)-2])
}

// AppendWire appends the reply in wire form to b and returns the result.
//
// A single-line reply is "ddd text\r\n". A multi-line reply is
// "ddd-first\r\n", each middle line as it is followed by "\r\n", and
// "ddd last\r\n". A middle line that a client could take for the end of
// the reply (it starts with the same code, not followed by "-") is written
// with a leading space (RFC 959 section 4.2). CR and LF inside a line are
// replaced by spaces, so nothing can be injected. Code should be 100 to
// 599; other values are written as they are (WriteReply refuses them). A
// reply without lines is written as one empty line.
func (r Reply) AppendWire(b []byte) []byte {
	code := codeString(r.Code)
	n := len(r.Lines)
	if n <= 1 {
		text := ""
		if n == 1 {
			text = r.Lines[0]
		}
		b = append(b, code...)
		b = append(b, ' ')
		b = appendClean(b, text)
		return append(b, '\r', '\n')
	}
	b = append(b, code...)
	b = append(b, '-')
	b = appendClean(b, r.Lines[0])
	b = append(b, '\r', '\n')
	for _, l := range r.Lines[1 : n-1] {
		if endsReply(l, code) {
			b = append(b, ' ')
		}
		b = appendClean(b, l)
		b = append(b, '\r', '\n')
	}
	b = append(b, code...)
	b = append(b, ' ')
	b = appendClean(b, r.Lines[n-1])
	return append(b, '\r', '\n')
}

// codeString returns code as three digits ("220"), or in decimal if it has
// not three digits.
func codeString(code int) string {
	if code >= 100 && code <= 999 {
		return strconv.Itoa(code)
	}
	return fmt.Sprintf("%03d", code)
}

// endsReply reports whether a middle line l could be read as the final
// line of a reply with code: it starts with code and the next byte, if
// any, is not '-'. (Readers differ: some end on "ddd " only, some on
// anything but "ddd-".)
func endsReply(l, code string) bool {
	return strings.HasPrefix(l, code) && (len(l) == len(code) || l[len(code)] != '-')
}

// appendClean appends s to b with every CR and LF replaced by a space.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// WriteReply writes r in wire form (see Reply.AppendWire) in one Write. A
// code outside 100 to 599 is refused with an error and nothing is written.
func WriteReply(w io.Writer, r Reply) error {
	if r.Code < 100 || r.Code > 599 {
		return fmt.Errorf("ftp: reply code %d out of range", r.Code)
	}
	_, err := w.Write(r.AppendWire(nil))
	return err
}
