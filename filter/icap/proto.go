package icap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strconv"
	"strings"
)

// Limits on what the gateway reads from an ICAP server.
const (
	maxLineBytes   = 8 << 10  // one header line
	maxHeaderBytes = 64 << 10 // a response's ICAP headers, or an encapsulated HTTP header
	maxHeaderLines = 200
	// maxBodyBytes bounds an encapsulated body read (and dropped) to keep
	// the connection, past what the gateway sent (an echo of it).
	maxBodyBytes = 1 << 20
)

// Protocol errors.
var (
	// ErrProtocol: the server's reply is not ICAP as RFC 3507 has it.
	ErrProtocol = errors.New("icap: protocol error")
	// ErrTooLarge: a header line, the headers or a body passed their bound.
	ErrTooLarge = errors.New("icap: reply too large")
)

// response is an ICAP reply's status line and headers.
type response struct {
	Status int
	Reason string
	Header textproto.MIMEHeader // folded lines kept apart with "\n"
	// Encapsulated offsets by name (req-hdr, res-hdr, req-body, res-body,
	// null-body, opt-body), in their order.
	Encap []encapPart
}

type encapPart struct {
	Name   string
	Offset int
}

// readLine reads one line (CRLF or LF) of at most maxLineBytes.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLineBytes {
			return "", fmt.Errorf("%w: a line longer than %d bytes", ErrTooLarge, maxLineBytes)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return "", io.EOF
			}
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readHeader reads header lines up to the empty line, bounded in lines
// and bytes; continuation lines (obs-fold) join their field with "\n".
func readHeader(r *bufio.Reader) (textproto.MIMEHeader, int, error) {
	h := textproto.MIMEHeader{}
	total, lines := 0, 0
	var last string
	for {
		line, err := readLine(r)
		if err != nil {
			return nil, total, unexpected(err) // the status line came: not a clean end
		}
		total += len(line) + 2
		lines++
		if total > maxHeaderBytes || lines > maxHeaderLines {
			return nil, total, fmt.Errorf("%w: headers past %d bytes or %d lines", ErrTooLarge, maxHeaderBytes, maxHeaderLines)
		}
		if line == "" {
			return h, total, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last == "" {
				return nil, total, fmt.Errorf("%w: a continuation line without a field", ErrProtocol)
			}
			v := h[last]
			v[len(v)-1] += "\n" + strings.TrimSpace(line)
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, total, fmt.Errorf("%w: bad header line %q", ErrProtocol, clip(line))
		}
		last = textproto.CanonicalMIMEHeaderKey(k)
		h[last] = append(h[last], strings.TrimSpace(v))
	}
}

// readResponse reads an ICAP status line and its headers.
func readResponse(r *bufio.Reader) (*response, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, reason, _ := strings.Cut(rest, " ")
	if proto != "ICAP/1.0" || len(code) != 3 {
		return nil, fmt.Errorf("%w: bad status line %q", ErrProtocol, clip(line))
	}
	status, err := strconv.Atoi(code)
	if err != nil || status < 100 {
		return nil, fmt.Errorf("%w: bad status line %q", ErrProtocol, clip(line))
	}
	h, _, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	resp := &response{Status: status, Reason: reason, Header: h}
	if e := h.Get("Encapsulated"); e != "" {
		resp.Encap, err = parseEncapsulated(e)
		if err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// parseEncapsulated parses "req-hdr=0, res-hdr=120, res-body=300".
func parseEncapsulated(s string) ([]encapPart, error) {
	var parts []encapPart
	prev := -1
	for f := range strings.SplitSeq(s, ",") {
		name, off, ok := strings.Cut(strings.TrimSpace(f), "=")
		n, err := strconv.Atoi(off)
		if !ok || err != nil || n < 0 || n < prev || n > maxHeaderBytes*2 {
			return nil, fmt.Errorf("%w: bad Encapsulated header %q", ErrProtocol, clip(s))
		}
		switch name {
		case "req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body":
		default:
			return nil, fmt.Errorf("%w: bad Encapsulated header %q", ErrProtocol, clip(s))
		}
		prev = n
		parts = append(parts, encapPart{name, n})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: empty Encapsulated header", ErrProtocol)
	}
	return parts, nil
}

// encapsulated is what a reply carries after its ICAP headers.
type encapsulated struct {
	ReqHdr  string // the encapsulated HTTP request header ("" if none)
	ResHdr  string // the encapsulated HTTP response header ("" if none)
	HasBody bool
	// BodyBytes is the length of the body (0 without one).
	BodyBytes int64
	// HTTPStatus is ResHdr's status code, 0 without one.
	HTTPStatus int
}

// readEncapsulated reads the HTTP headers a reply encapsulates, and reads
// and drops its chunked body (at most limit bytes), leaving r at the next
// reply.
func readEncapsulated(r *bufio.Reader, resp *response, limit int64) (encapsulated, error) {
	var e encapsulated
	for i, p := range resp.Encap {
		switch p.Name {
		case "null-body":
			return e, nil
		case "req-body", "res-body", "opt-body":
			e.HasBody = true
			var err error
			e.BodyBytes, err = discardChunked(r, limit)
			return e, err
		}
		// A header section: its length is the next part's offset minus its own.
		if i+1 >= len(resp.Encap) {
			return e, fmt.Errorf("%w: Encapsulated ends with a header section", ErrProtocol)
		}
		n := resp.Encap[i+1].Offset - p.Offset
		if n > maxHeaderBytes {
			return e, fmt.Errorf("%w: an encapsulated header of %d bytes", ErrTooLarge, n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return e, fmt.Errorf("reading the encapsulated %s: %w", p.Name, unexpected(err))
		}
		if p.Name == "req-hdr" {
			e.ReqHdr = string(b)
		} else {
			e.ResHdr = string(b)
			e.HTTPStatus = httpStatus(e.ResHdr)
		}
	}
	return e, nil
}

// httpStatus reads the code of an HTTP status line, 0 if there is none.
func httpStatus(hdr string) int {
	line, _, _ := strings.Cut(hdr, "\n")
	_, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	code, _, _ := strings.Cut(rest, " ")
	n, err := strconv.Atoi(code)
	if err != nil || n < 100 || n > 999 {
		return 0
	}
	return n
}

// discardChunked reads a chunked body to its last chunk and trailer, at
// most limit bytes of data, and returns its length.
func discardChunked(r *bufio.Reader, limit int64) (int64, error) {
	var total int64
	for {
		line, err := readLine(r)
		if err != nil {
			return total, fmt.Errorf("reading a chunk size: %w", unexpected(err))
		}
		sz, _, _ := strings.Cut(line, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
		if err != nil || n < 0 {
			return total, fmt.Errorf("%w: bad chunk size %q", ErrProtocol, clip(line))
		}
		if n == 0 {
			// Trailer lines up to the empty one.
			if _, _, err := readHeader(r); err != nil {
				return total, fmt.Errorf("reading the chunk trailer: %w", unexpected(err))
			}
			return total, nil
		}
		total += n
		if total > limit {
			return total, fmt.Errorf("%w: an encapsulated body past %d bytes", ErrTooLarge, limit)
		}
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return total, fmt.Errorf("reading a chunk: %w", unexpected(err))
		}
		crlf, err := readLine(r)
		if err != nil || crlf != "" {
			return total, fmt.Errorf("%w: a chunk not ended by CRLF", ErrProtocol)
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// clip shortens a peer's text for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// threat reads the threat a reply names, "" when it names none: the
// X-Infection-Found "Threat=" field, X-Virus-ID, or the first name in
// X-Violations-Found.
func threat(h textproto.MIMEHeader) string {
	if v := h.Get("X-Infection-Found"); v != "" {
		for f := range strings.SplitSeq(v, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
			if ok && strings.EqualFold(k, "Threat") && strings.TrimSpace(val) != "" {
				return strings.TrimSpace(val)
			}
		}
		return "infection found"
	}
	if v := strings.TrimSpace(h.Get("X-Virus-Id")); v != "" {
		return v
	}
	if v := h.Get("X-Violations-Found"); v != "" {
		// "count\nfilename\nthreat\nid\nresolution..." (folded lines).
		lines := strings.Split(v, "\n")
		if n, err := strconv.Atoi(strings.TrimSpace(lines[0])); err == nil && n == 0 {
			return ""
		}
		if len(lines) >= 3 && strings.TrimSpace(lines[2]) != "" {
			return strings.TrimSpace(lines[2])
		}
		return "violation found"
	}
	return ""
}

// printable keeps the printable ASCII of a peer's text, at most n bytes:
// it goes into an FTP reply and the logs.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			r = '?'
		}
		if b.Len() >= n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
