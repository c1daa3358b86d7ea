package tunnel

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// maxLine bounds every line of the tunnel's own protocol (requests,
// replies, hello), newline included.
const maxLine = 512

// Reply codes an agent (or the Hub, to an agent's hello) answers with.
const (
	CodeRefused    = "refused"     // the destination is not in the agent's allow list
	CodeBusy       = "busy"        // the agent has max_streams streams open
	CodeDraining   = "draining"    // the agent is shutting down: it takes only its sessions' data connections
	CodeDial       = "dial"        // the agent could not connect to the destination
	CodeBadRequest = "bad-request" // the request line did not parse
	CodeForbidden  = "forbidden"   // (hello) the agent's certificate is not pinned for the group it claims
)

var (
	errLineTooLong = errors.New("tunnel: line too long")
	errBadLine     = errors.New("tunnel: malformed line")
)

// Request asks an agent to connect to Address ("host:port"), from the
// local address From when valid (data connections come from the control
// connection's address, as vsftpd checks).
type Request struct {
	Address string
	From    netip.Addr
}

// String is the request's line, without its newline:
// "CONNECT host:port" or "CONNECT host:port FROM ip".
func (r Request) String() string {
	if r.From.IsValid() {
		return "CONNECT " + r.Address + " FROM " + r.From.String()
	}
	return "CONNECT " + r.Address
}

// ParseRequest parses a request line (without its newline).
func ParseRequest(line string) (Request, error) {
	f := strings.Split(line, " ")
	if (len(f) != 2 && len(f) != 4) || f[0] != "CONNECT" {
		return Request{}, fmt.Errorf("%w: want CONNECT host:port [FROM ip]", errBadLine)
	}
	host, port, err := net.SplitHostPort(f[1])
	if err != nil || host == "" || !validHost(host) {
		return Request{}, fmt.Errorf("%w: bad address %q", errBadLine, f[1])
	}
	n, err := parsePort(port)
	if err != nil {
		return Request{}, fmt.Errorf("%w: bad port in %q", errBadLine, f[1])
	}
	r := Request{Address: net.JoinHostPort(host, strconv.Itoa(int(n)))}
	if len(f) == 4 {
		if f[2] != "FROM" {
			return Request{}, fmt.Errorf("%w: want FROM, got %q", errBadLine, f[2])
		}
		if r.From, err = netip.ParseAddr(f[3]); err != nil || r.From.Zone() != "" {
			return Request{}, fmt.Errorf("%w: bad FROM address %q", errBadLine, f[3])
		}
	}
	return r, nil
}

// Reply is an agent's answer to a request: OK with the addresses of the
// connection it opened, or an error code and text.
type Reply struct {
	Code          string         // "" for OK
	Text          string         // the error's text
	Remote, Local netip.AddrPort // OK: the connection's two ends, as the agent sees them
}

// String is the reply's line, without its newline:
// "OK remote local" or "ERR code text".
func (r Reply) String() string {
	if r.Code == "" {
		return "OK " + r.Remote.String() + " " + r.Local.String()
	}
	return "ERR " + r.Code + " " + sanitize(r.Text)
}

// ParseReply parses a reply line (without its newline).
func ParseReply(line string) (Reply, error) {
	verb, rest, _ := strings.Cut(line, " ")
	switch verb {
	case "OK":
		a, b, ok := strings.Cut(rest, " ")
		if !ok {
			return Reply{}, fmt.Errorf("%w: want OK remote local", errBadLine)
		}
		remote, err1 := netip.ParseAddrPort(a)
		local, err2 := netip.ParseAddrPort(b)
		if err1 != nil || err2 != nil || remote.Addr().Zone() != "" || local.Addr().Zone() != "" {
			return Reply{}, fmt.Errorf("%w: bad addresses in OK reply", errBadLine)
		}
		return Reply{Remote: remote, Local: local}, nil
	case "ERR":
		code, text, _ := strings.Cut(rest, " ")
		if code == "" || !isToken(code) {
			return Reply{}, fmt.Errorf("%w: want ERR code text", errBadLine)
		}
		return Reply{Code: code, Text: sanitize(text)}, nil
	}
	return Reply{}, fmt.Errorf("%w: want OK or ERR", errBadLine)
}

// ReadLine reads one line of at most maxLine bytes, a byte at a time so
// that nothing after the newline is consumed (the relayed bytes follow a
// reply at once). The newline is not returned; a CR before it is an error.
func ReadLine(r io.Reader) (string, error) {
	var buf [maxLine]byte
	for n := 0; n < len(buf); n++ {
		if _, err := io.ReadFull(r, buf[n:n+1]); err != nil {
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if buf[n] == '\n' {
			line := string(buf[:n])
			if !printable(line) {
				return "", fmt.Errorf("%w: control characters", errBadLine)
			}
			return line, nil
		}
	}
	return "", errLineTooLong
}

// WriteLine writes s and a newline in one Write; s must fit in a line.
func WriteLine(w io.Writer, s string) error {
	if len(s)+1 > maxLine || !printable(s) {
		return errBadLine
	}
	_, err := io.WriteString(w, s+"\n")
	return err
}

// sanitize keeps an error text printable and short enough for a line.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// isToken: a code or a group name: letters, digits, '.', '_' and '-',
// 1 to 64 of them.
func isToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validHost: an IP address (no zone) or a DNS name.
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || s[0] == '+' || s[0] == '-' {
		return 0, errors.New("bad port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("want a port from 1 to 65535")
	}
	return uint16(n), nil
}
