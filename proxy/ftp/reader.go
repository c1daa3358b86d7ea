package ftp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Bounds of one reply read by Reader.ReadReply.
const (
	maxReplyBytes = 1 << 20 // total bytes of all lines, line ends included
	maxReplyLines = 10000
)

// Reader reads command lines or replies from a control connection. It
// buffers: once a Reader reads from a connection, all reads must go
// through it until the caller is done with the plain stream (see
// Buffered). A Reader is not safe for concurrent use.
type Reader struct {
	br *bufio.Reader
	// pending holds the start of a line whose end has not arrived yet,
	// kept across a read error such as a deadline so that the next
	// ReadLine continues the same line.
	pending []byte
	// discarding is set while the rest of an overlong line is skipped.
	discarding bool
}

// readBufSize is a Reader's buffer. Command lines and reply lines are
// short; a longer line (up to MaxLineLength) is gathered in pieces. A
// gateway holds two Readers per idle session, so their size is its memory.
const readBufSize = 512

// NewReader returns a Reader on r whose lines are at most MaxLineLength
// bytes.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBufSize)}
}

// Buffered returns the number of bytes read from the underlying reader but
// not yet returned to the caller. After the line "AUTH TLS", anything
// buffered was sent in plain text before the TLS handshake, and must be
// refused (the STARTTLS command injection, CVE-2011-0411 and kin).
func (r *Reader) Buffered() int { return r.br.Buffered() + len(r.pending) }

// ReadLine returns the next line without its line end. Lines end in CRLF;
// a bare LF is accepted too. Only the line end is removed: a CR before
// "\r\n" stays in the line.
//
// A line longer than MaxLineLength is read up to its end and discarded,
// and ErrLineTooLong is returned; the next call returns the next line. At
// the end of the stream, ReadLine returns io.EOF if it falls between two
// lines and io.ErrUnexpectedEOF if it cuts a line. Other errors of the
// underlying reader are returned as they are; the part of a line read
// before such an error (a deadline, say) is kept, and the next call goes
// on with it.
func (r *Reader) ReadLine() (string, error) {
	for {
		frag, err := r.br.ReadSlice('\n')
		if err == nil {
			if r.discarding {
				r.discarding = false
				return "", ErrLineTooLong
			}
			line := frag
			if len(r.pending) > 0 {
				line = append(r.pending, frag...)
				r.pending = r.pending[:0]
			}
			line = trimLineEnd(line)
			if len(line) > MaxLineLength {
				return "", ErrLineTooLong
			}
			return string(line), nil
		}
		// No line end yet: frag is the start (or a further piece) of a line.
		if !r.discarding {
			r.pending = append(r.pending, frag...)
			// MaxLineLength bytes and a CR may still end in a legal line.
			if len(r.pending) > MaxLineLength+1 {
				r.discarding = true
				r.pending = r.pending[:0]
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if !r.discarding && len(r.pending) == 0 {
				return "", io.EOF
			}
			r.discarding = false
			r.pending = r.pending[:0]
			return "", io.ErrUnexpectedEOF
		default:
			return "", err
		}
	}
}

// trimLineEnd removes a trailing "\n" and then one "\r" before it.
func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// ReadCommand reads one command line (see ReadLine), removes the Telnet
// sequences a client may send before the verb (RFC 854), and parses it
// (see ParseCommand).
//
// The caller forwards the parsed command, not the line, so what it checks,
// logs and counts is byte for byte what the backend receives, provided the
// backend finds no Telnet in it: a Telnet-aware server (ProFTPD) would
// remove "\xff\xf4" from "anonymou\xff\xf4s" and log in "anonymous". So:
//
//   - Telnet is accepted only in front of the verb, where clients put the
//     IP and Synch before ABOR (RFC 959 section 4.1.3): IAC followed by a
//     command byte from 0xF0 to 0xFE (NOP, DM, IP, AO, ...), IAC WILL, WONT,
//     DO or DONT with their option byte, and a lone DM (0xF2) whose IAC
//     was taken out of band as urgent data. These are removed:
//     "\xff\xf4\xff\xf2ABOR" and "\xff\xf4\xf2ABOR" read as ABOR.
//   - In front of the verb, IAC SB (subnegotiation, which FTP does not
//     use), IAC IAC and IAC followed by anything else, or by nothing, are
//     refused.
//   - From the verb on, the line must not hold the byte 0xFF at all. IAC
//     IAC stands for a data byte 0xFF, which UTF-8 never holds and the
//     gateway never sends on (a backend would read it as IAC again); any
//     other IAC there would be a Telnet command inside the verb or the
//     argument. Such a line is refused, not cleaned: the backend must not
//     see a command the client did not spell.
//
// Every other byte stays as it is, including 0x80 to 0xFE: without an IAC
// in front of it no such byte is Telnet to any server, and they are part
// of UTF-8 names (0xF0 to 0xF4 lead four-byte sequences) and of legacy
// 8-bit names ("\xfc" is ü in Latin-1).
//
// A refused line gives an error wrapping ErrMalformedCommand that names
// no byte of the line but, from ParseCommand, a valid verb, masked if it
// may hold a password.
func (r *Reader) ReadCommand() (Command, error) {
	line, err := r.ReadLine()
	if err != nil {
		return Command{}, err
	}
	line, err = stripTelnet(line)
	if err != nil {
		return Command{}, err
	}
	return ParseCommand(line)
}

// Telnet command bytes (RFC 854).
const (
	telnetIAC  = 0xFF
	telnetDONT = 0xFE
	telnetWILL = 0xFB
	telnetSB   = 0xFA
	telnetDM   = 0xF2
	telnetSE   = 0xF0 // the lowest command byte
)

// stripTelnet removes the Telnet sequences in front of the verb (see
// ReadCommand) and returns the rest of the line, which is a substring of
// s. A Telnet sequence it does not accept gives an error wrapping
// ErrMalformedCommand; a 0xFF byte after the sequences is left for
// ParseCommand to refuse.
func stripTelnet(s string) (string, error) {
	i := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == telnetDM:
			i++ // a Synch whose IAC went out of band
			continue
		case c != telnetIAC:
			return s[i:], nil
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%w: Telnet IAC at the end of the line", ErrMalformedCommand)
		}
		switch next := s[i+1]; {
		case next == telnetIAC:
			return "", fmt.Errorf("%w: Telnet IAC IAC (a 0xFF data byte)", ErrMalformedCommand)
		case next == telnetSB:
			return "", fmt.Errorf("%w: Telnet subnegotiation", ErrMalformedCommand)
		case next >= telnetWILL && next <= telnetDONT:
			if i+2 >= len(s) {
				return "", fmt.Errorf("%w: Telnet option negotiation without its option", ErrMalformedCommand)
			}
			i += 3
		case next >= telnetSE:
			i += 2
		default:
			return "", fmt.Errorf("%w: Telnet IAC before a data byte", ErrMalformedCommand)
		}
	}
	return "", nil
}

// ReadReply reads one whole reply (RFC 959 section 4.2): a single line
// "ddd text" (or "ddd" alone), or a multi-line reply from "ddd-text" up to
// and including the first line that starts with the same "ddd " or is
// exactly "ddd". Middle lines may be anything, including lines that start
// with other codes.
//
// A first line that does not start with a code from 100 to 599 followed by
// a space, a "-" or nothing, a reply of more than 1 MiB or 10000 lines, or
// a line longer than MaxLineLength gives an error wrapping
// ErrMalformedReply (for the last, ErrLineTooLong too). io.EOF is returned
// only before the first line; a stream that ends inside a reply gives
// io.ErrUnexpectedEOF. After an error within a multi-line reply the lines
// read so far are lost: treat the connection as broken.
func (r *Reader) ReadReply() (Reply, error) {
	first, err := r.ReadLine()
	if err != nil {
		return Reply{}, replyError(err)
	}
	code, ok := parseCode(first)
	if !ok || (len(first) > 3 && first[3] != ' ' && first[3] != '-') {
		return Reply{}, fmt.Errorf("%w: %q", ErrMalformedReply, truncate(first, 80))
	}
	if len(first) == 3 {
		return Reply{Code: code, Lines: []string{""}}, nil
	}
	if first[3] == ' ' {
		return Reply{Code: code, Lines: []string{first[4:]}}, nil
	}
	lines := []string{first[4:]}
	total := len(first) + 2
	prefix := first[:3]
	for {
		line, err := r.ReadLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Reply{}, replyError(err)
		}
		total += len(line) + 2
		if total > maxReplyBytes || len(lines) >= maxReplyLines {
			return Reply{}, fmt.Errorf("%w: reply %s longer than %d bytes or %d lines", ErrMalformedReply, prefix, maxReplyBytes, maxReplyLines)
		}
		if line == prefix {
			return Reply{Code: code, Lines: append(lines, "")}, nil
		}
		if len(line) > 3 && line[3] == ' ' && line[:3] == prefix {
			return Reply{Code: code, Lines: append(lines, line[4:])}, nil
		}
		lines = append(lines, line)
	}
}

// replyError wraps ErrLineTooLong in ErrMalformedReply and returns other
// errors as they are.
func replyError(err error) error {
	if errors.Is(err, ErrLineTooLong) {
		return fmt.Errorf("%w: %w", ErrMalformedReply, err)
	}
	return err
}

// parseCode parses the reply code at the start of line: three digits, 100
// to 599.
func parseCode(line string) (int, bool) {
	if len(line) < 3 {
		return 0, false
	}
	a, b, c := line[0], line[1], line[2]
	if a < '1' || a > '5' || b < '0' || b > '9' || c < '0' || c > '9' {
		return 0, false
	}
	return int(a-'0')*100 + int(b-'0')*10 + int(c-'0'), true
}
