package ftp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Data-channel address codecs: PASV and PORT (RFC 959 section 4.1.2),
// EPSV and EPRT (RFC 2428). Parsers of server replies return errors
// wrapping ErrMalformedReply; parsers of client arguments return errors
// wrapping ErrMalformedCommand or ErrUnsupportedProtocol. Nothing here
// panics, whatever the input.

// ParsePASV reads the address in the text of a 227 reply. Servers word the
// reply differently ("Entering Passive Mode (127,0,0,1,195,80).",
// "Entering Passive Mode 127,0,0,1,195,80", "=127,0,0,1,195,80"), so the
// wording is ignored: the first run of six comma-separated decimal numbers
// from 0 to 255, with optional spaces around the commas, is taken. A port
// of 0 is an error.
func ParsePASV(text string) (netip.AddrPort, error) {
	for i := 0; i < len(text); i++ {
		if !isDigit(text[i]) || (i > 0 && isDigit(text[i-1])) {
			continue
		}
		if nums, _, ok := scanSix(text[i:]); ok {
			ap, err := sixToAddrPort(nums)
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("%w: 227 %v", ErrMalformedReply, err)
			}
			return ap, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%w: no address in 227 text %q", ErrMalformedReply, truncate(text, 80))
}

// FormatPASV returns the text of a 227 reply for ap:
// "Entering Passive Mode (h1,h2,h3,h4,p1,p2).". The address must be IPv4
// or IPv4-mapped IPv6 and the port not 0.
func FormatPASV(ap netip.AddrPort) (string, error) {
	six, err := formatSix(ap)
	if err != nil {
		return "", err
	}
	return "Entering Passive Mode (" + six + ").", nil
}

// ParsePORT parses the argument of PORT, "h1,h2,h3,h4,p1,p2": six decimal
// numbers from 0 to 255, with optional spaces around the commas and the
// whole. A port of 0 is an error.
func ParsePORT(arg string) (netip.AddrPort, error) {
	s := strings.Trim(arg, " ")
	nums, n, ok := scanSix(s)
	if !ok || n != len(s) {
		return netip.AddrPort{}, fmt.Errorf("%w: PORT %q", ErrMalformedCommand, truncate(arg, 80))
	}
	ap, err := sixToAddrPort(nums)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: PORT %v", ErrMalformedCommand, err)
	}
	return ap, nil
}

// FormatPORT returns the argument of PORT for ap: "h1,h2,h3,h4,p1,p2". The
// address must be IPv4 or IPv4-mapped IPv6 and the port not 0.
func FormatPORT(ap netip.AddrPort) (string, error) {
	return formatSix(ap)
}

// scanSix reads six comma-separated decimal numbers from 0 to 255 at the
// start of s, with optional spaces around each comma. It returns them, the
// number of bytes they take, and whether it found them.
func scanSix(s string) (nums [6]byte, n int, ok bool) {
	i := 0
	for k := 0; k < 6; k++ {
		if k > 0 {
			i = skipSpaces(s, i)
			if i >= len(s) || s[i] != ',' {
				return nums, 0, false
			}
			i = skipSpaces(s, i+1)
		}
		v, j := 0, i
		for j < len(s) && isDigit(s[j]) && j-i < 3 {
			v = v*10 + int(s[j]-'0')
			j++
		}
		if j == i || v > 255 || (j < len(s) && isDigit(s[j])) {
			return nums, 0, false
		}
		nums[k] = byte(v)
		i = j
	}
	return nums, i, true
}

// sixToAddrPort turns h1..h4, p1, p2 into an address and port.
func sixToAddrPort(nums [6]byte) (netip.AddrPort, error) {
	port := uint16(nums[4])<<8 | uint16(nums[5])
	if port == 0 {
		return netip.AddrPort{}, fmt.Errorf("port 0")
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(nums[:4])), port), nil
}

// formatSix returns "h1,h2,h3,h4,p1,p2" for an IPv4 (or IPv4-mapped)
// address and a port other than 0.
func formatSix(ap netip.AddrPort) (string, error) {
	addr := ap.Addr().Unmap()
	if !addr.Is4() {
		return "", fmt.Errorf("ftp: PASV/PORT need an IPv4 address, not %v", ap.Addr())
	}
	if ap.Port() == 0 {
		return "", fmt.Errorf("ftp: PASV/PORT with port 0")
	}
	a := addr.As4()
	b := make([]byte, 0, len("255,255,255,255,255,255"))
	for _, v := range [...]byte{a[0], a[1], a[2], a[3], byte(ap.Port() >> 8), byte(ap.Port())} {
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return string(b), nil
}

// ParseEPSV reads the port in the text of a 229 reply:
// "Entering Extended Passive Mode (|||6446|)". Between the parentheses are
// three delimiters, the port (1 to 65535) and a fourth delimiter, all four
// the same character from ASCII 33 to 126 other than a digit. The wording
// around the parentheses is ignored.
func ParseEPSV(text string) (uint16, error) {
	for i := strings.IndexByte(text, '('); i >= 0; {
		if port, ok := scanEPSV(text[i+1:]); ok {
			return port, nil
		}
		j := strings.IndexByte(text[i+1:], '(')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return 0, fmt.Errorf("%w: no port in 229 text %q", ErrMalformedReply, truncate(text, 80))
}

// scanEPSV parses "<d><d><d>port<d>)" at the start of s.
func scanEPSV(s string) (uint16, bool) {
	if len(s) < 6 {
		return 0, false
	}
	d := s[0]
	if !isDelimiter(d) || s[1] != d || s[2] != d {
		return 0, false
	}
	end := strings.IndexByte(s[3:], d)
	if end < 0 || 3+end+1 >= len(s) || s[3+end+1] != ')' {
		return 0, false
	}
	port, ok := parsePort(s[3 : 3+end])
	return port, ok
}

// FormatEPSV returns the text of a 229 reply for port:
// "Entering Extended Passive Mode (|||port|)".
func FormatEPSV(port uint16) string {
	return "Entering Extended Passive Mode (|||" + strconv.FormatUint(uint64(port), 10) + "|)"
}

// ParseEPSVArg parses the argument of a client's EPSV (RFC 2428 section 3):
// "" gives (false, 0), "ALL" in any case gives (true, 0), "1" or "2" give
// (false, 1 or 2). Any other number is an error wrapping
// ErrUnsupportedProtocol (answer 522); anything else one wrapping
// ErrMalformedCommand.
func ParseEPSVArg(arg string) (all bool, proto int, err error) {
	switch {
	case arg == "":
		return false, 0, nil
	case strings.EqualFold(arg, "ALL"):
		return true, 0, nil
	}
	p, err := parseNetProt(arg)
	if err != nil {
		return false, 0, fmt.Errorf("EPSV: %w", err)
	}
	return false, p, nil
}

// ParseEPRT parses the argument of EPRT (RFC 2428 section 2):
// "|1|132.235.1.2|6275|" or "|2|1080::8:800:200C:417A|5282|". The
// delimiter may be any character from ASCII 33 to 126 other than a digit,
// the same four times. A network protocol other than 1 or 2 is an error
// wrapping ErrUnsupportedProtocol (answer 522); an address that does not
// match the protocol, an IPv6 zone, a port outside 1 to 65535 or any other
// syntax error, one wrapping ErrMalformedCommand.
func ParseEPRT(arg string) (netip.AddrPort, error) {
	bad := func(why string) (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("%w: EPRT %s: %q", ErrMalformedCommand, why, truncate(arg, 80))
	}
	if len(arg) < 2 || !isDelimiter(arg[0]) || arg[len(arg)-1] != arg[0] {
		return bad("bad delimiters")
	}
	fields := strings.Split(arg[1:len(arg)-1], arg[:1])
	if len(fields) != 3 {
		return bad("not three fields")
	}
	proto, err := parseNetProt(fields[0])
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("EPRT: %w", err)
	}
	addr, err := netip.ParseAddr(fields[1])
	if err != nil || addr.Zone() != "" {
		return bad("bad address")
	}
	if (proto == 1) != addr.Is4() {
		return bad("address does not match the network protocol")
	}
	port, ok := parsePort(fields[2])
	if !ok {
		return bad("bad port")
	}
	return netip.AddrPortFrom(addr, port), nil
}

// FormatEPRT returns the argument of EPRT for ap: "|1|addr|port|" for an
// IPv4 or IPv4-mapped address, "|2|addr|port|" for IPv6. The zone of an
// IPv6 address is left out. ap should be valid, with a port other than 0.
func FormatEPRT(ap netip.AddrPort) string {
	addr := ap.Addr().Unmap().WithZone("")
	proto := "2"
	if addr.Is4() {
		proto = "1"
	}
	return "|" + proto + "|" + addr.String() + "|" + strconv.FormatUint(uint64(ap.Port()), 10) + "|"
}

// parseNetProt parses an RFC 2428 network protocol number: 1 (IPv4) or 2
// (IPv6). Other numbers give ErrUnsupportedProtocol, non-numbers
// ErrMalformedCommand.
func parseNetProt(s string) (int, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: network protocol %q", ErrMalformedCommand, truncate(s, 16))
	}
	if p := strings.TrimLeft(s, "0"); p == "1" || p == "2" {
		return int(p[0] - '0'), nil
	}
	return 0, fmt.Errorf("%w: %s", ErrUnsupportedProtocol, truncate(s, 16))
}

// parsePort parses a TCP port from 1 to 65535 written as 1 to 5 decimal
// digits.
func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if v < 1 || v > 65535 {
		return 0, false
	}
	return uint16(v), true
}

// isDelimiter reports whether c may delimit EPRT and EPSV fields: ASCII 33
// to 126 (RFC 2428), but not a digit, which would make the port ambiguous.
func isDelimiter(c byte) bool { return c >= 33 && c <= 126 && !isDigit(c) }

// skipSpaces returns the index of the first byte at or after i in s that
// is not a space.
func skipSpaces(s string, i int) int {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
