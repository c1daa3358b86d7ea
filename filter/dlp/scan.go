package dlp

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"regexp"
)

// The scanner's bounds: lookback is what a token's parse reads before its
// anchor (an address's local part: 64 bytes and the byte before it),
// lookahead what it reads after (an address's domain: 253 bytes and two).
// The carried tail of a chunk is at most lookback+lookahead bytes.
const (
	lookback  = 80
	lookahead = 260
	headSize  = 262 // the magic bytes looked at: tar's "ustar" is at 257
)

// Counts are a stream's detector counts.
type Counts struct {
	Cards, IBANs, SSNs, Emails, Keywords int
	Patterns                             []int  // one per pattern, in order
	FileType                             string // "" when no known type
}

// scanner runs the detectors over one stream.
type scanner struct {
	digits                     bool // any digit detector
	cards, ibans, ssns, emails bool // the detectors on
	c                          Counts
	buf                        []byte
	pos                        int  // the next position of buf to look at
	atStart                    bool // buf[0] is the stream's first byte
	head                       []byte
	typed                      bool
	kw                         *keywords
	kwState                    int32
	pats                       []*regexp.Regexp
	win                        []byte
	window                     int
	total                      int64
}

func newScanner(p *Policy) *scanner {
	s := &scanner{
		digits: p.cfg.Cards.Enabled || p.cfg.IBANs.Enabled || p.cfg.SSNs.Enabled,
		cards:  p.cfg.Cards.Enabled, ibans: p.cfg.IBANs.Enabled, ssns: p.cfg.SSNs.Enabled,
		emails: p.cfg.Emails.Enabled, atStart: true, kw: p.kw, pats: p.pats, window: p.cfg.PatternWindow,
	}
	s.c.Patterns = make([]int, len(p.pats))
	return s
}

// chunk bounds the bytes appended to the buffer at once.
const chunk = 64 << 10

func (s *scanner) write(p []byte) {
	s.total += int64(len(p))
	if !s.typed {
		n := min(len(p), headSize-len(s.head))
		s.head = append(s.head, p[:n]...)
		if len(s.head) >= headSize {
			s.c.FileType, s.typed = fileType(s.head), true
		}
	}
	if s.kw != nil {
		s.kwState = s.kw.scan(s.kwState, p, &s.c.Keywords)
	}
	if len(s.pats) > 0 {
		s.patterns(p)
	}
	if !s.digits && !s.emails {
		return
	}
	for len(p) > 0 {
		n := min(len(p), chunk)
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
		s.scan(false)
	}
}

func (s *scanner) finish() {
	if !s.typed {
		s.c.FileType, s.typed = fileType(s.head), true
	}
	if len(s.pats) > 0 && len(s.win) > 0 {
		s.runPatterns()
	}
	if s.digits || s.emails {
		s.scan(true)
	}
}

// scan parses the tokens of buf from pos; at eof the stream's end is a
// token boundary, otherwise a token that reaches the end of buf waits for
// the next chunk.
func (s *scanner) scan(eof bool) {
	buf := s.buf
	i := s.pos
	for i < len(buf) {
		j := nextAnchor(buf, i)
		if j < 0 {
			i = len(buf)
			break
		}
		var end int
		var more bool
		if buf[j] == '@' {
			end, more = s.email(buf, j, eof)
		} else {
			end, more = s.digit(buf, j, eof)
		}
		if more {
			i = j
			break
		}
		i = end
	}
	// Keep lookback bytes before i.
	if keep := i - lookback; keep > 0 {
		n := copy(s.buf, s.buf[keep:])
		s.buf = s.buf[:n]
		i -= keep
		s.atStart = false
	}
	s.pos = i
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// nextAnchor returns the index of the first digit or '@' of buf from i, -1
// if none. It tests eight bytes at a time for a byte in 0x30-0x40.
func nextAnchor(buf []byte, i int) int {
	for ; i+8 <= len(buf); i += 8 {
		m := hasBetween(binary.LittleEndian.Uint64(buf[i:]))
		for m != 0 {
			k := i + bits.TrailingZeros64(m)/8
			if c := buf[k]; c-'0' <= 9 || c == '@' {
				return k
			}
			m &= m - 1 // one of :;<=>?
		}
	}
	for ; i < len(buf); i++ {
		if c := buf[i]; c-'0' <= 9 || c == '@' {
			return i
		}
	}
	return -1
}

// hasBetween has the high bit of each byte of x that is in 0x30-0x40
// (0x2f < b < 0x41) set, and no other bit: "Determine if a word has a byte
// between m and n" (Bit Twiddling Hacks, S. E. Anderson); exact per byte,
// as no byte's sum or difference carries into the next.
func hasBetween(x uint64) uint64 {
	const m, n = 0x2f, 0x41
	t := x & (ones * 127)
	return (ones*(127+n) - t) & ^x & (t + ones*(127-m)) & high
}

var class [256]uint8

const (
	cDigit = 1 << iota
	cUpper
	cLower
	cLocal  // an address's local part: letters, digits, ._%+-
	cDomain // letters, digits, '.', '-'
)

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		switch {
		case c >= '0' && c <= '9':
			k = cDigit | cLocal | cDomain
		case c >= 'A' && c <= 'Z':
			k = cUpper | cLocal | cDomain
		case c >= 'a' && c <= 'z':
			k = cLower | cLocal | cDomain
		case c == '.' || c == '-':
			k = cLocal | cDomain
		case c == '_' || c == '%' || c == '+':
			k = cLocal
		}
		class[c] = k
	}
}

const cAlnum = cDigit | cUpper | cLower

// at returns buf[k]'s class, 0 (a boundary) before the stream's start or
// after its end at eof; more when k is past the end of buf before eof.
func (s *scanner) at(buf []byte, k int, eof bool) (uint8, bool) {
	if k < 0 {
		return 0, false // lookback stays within buf (scan keeps it)
	}
	if k >= len(buf) {
		return 0, !eof
	}
	return class[buf[k]], false
}

// digit parses the token at the digit buf[j]: an IBAN whose check digits
// start there, or a run of digits (cards, SSNs) that starts there.
func (s *scanner) digit(buf []byte, j int, eof bool) (int, bool) {
	prev, _ := s.at(buf, j-1, eof)
	if prev&(cUpper|cLower) != 0 {
		if s.ibans && prev&cUpper != 0 {
			if end, more := s.iban(buf, j, eof); more || end > j+1 {
				return end, more
			}
		}
		return skipAlnum(buf, j), false
	}
	if prev&cDigit != 0 {
		return skipAlnum(buf, j), false
	}
	if b := buf[max(j-1, 0)]; j > 0 && (b == ' ' || b == '-') {
		if pp, _ := s.at(buf, j-2, eof); pp&cDigit != 0 {
			join, more := s.joins(buf, j-1, eof)
			if more {
				return 0, true
			}
			if join {
				return j + 1, false // inside a run
			}
		}
	}
	// Most runs are short numbers alone: no card (13 digits at least), no
	// SSN (a dash after 3).
	k := j
	for k < len(buf) && buf[k]-'0' <= 9 {
		k++
	}
	if k < len(buf) && k-j < 13 && buf[k] != ' ' && buf[k] != '-' {
		return k, false
	}
	return s.run(buf, j, eof)
}

// skipAlnum returns the end of the letters and digits from j (or of buf):
// no token starts inside such a run (an IBAN starts after a boundary, a
// run of digits after a non-digit).
func skipAlnum(buf []byte, j int) int {
	for j < len(buf) && class[buf[j]]&cAlnum != 0 {
		j++
	}
	return j
}

// maxGroup is the longest group of digits a separator joins: card numbers
// are printed in groups of 4 to 6 (4-4-4-4, 4-6-5), SSNs 3-2-4.
const maxGroup = 6

// joins reports whether the separator at buf[k], after a digit, joins the
// digits around it into one run: both groups are at most maxGroup digits
// long. "4111111111111111 5555555555554444" is two numbers, not one run.
func (s *scanner) joins(buf []byte, k int, eof bool) (join, more bool) {
	left := 0
	for i := k - 1; i >= 0 && left <= maxGroup && class[buf[i]]&cDigit != 0; i-- {
		left++
	}
	right := 0
	for i := k + 1; right <= maxGroup; i++ {
		c, more := s.at(buf, i, eof)
		if more {
			return false, true
		}
		if c&cDigit == 0 {
			break
		}
		right++
	}
	return left <= maxGroup && right >= 1 && right <= maxGroup, false
}

// run parses a run of digits from j: digits, each pair of them possibly
// separated by one space or dash.
func (s *scanner) run(buf []byte, j int, eof bool) (int, bool) {
	var (
		n            int
		groups       [3]int
		g            int // the group index
		dashes, seps int
	)
	k := j
	for {
		// The digits of a group.
		gs := k
		for k < len(buf) && buf[k]-'0' <= 9 {
			k++
		}
		n += k - gs
		if n > 19 {
			return skipAlnum(buf, k), false // too long for any detector
		}
		if g < len(groups) {
			groups[g] = k - gs
		}
		c, more := s.at(buf, k, eof)
		if more {
			return 0, true
		}
		if k < len(buf) && (buf[k] == ' ' || buf[k] == '-') {
			c2, more := s.at(buf, k+1, eof)
			if more {
				return 0, true
			}
			join := false
			if c2&cDigit != 0 {
				if join, more = s.joins(buf, k, eof); more {
					return 0, true
				}
			}
			if join {
				if buf[k] == '-' {
					dashes++
				}
				seps++
				g++
				k++
				continue
			}
		}
		if c&(cUpper|cLower) != 0 {
			return skipAlnum(buf, k), false // not standing alone
		}
		break
	}
	if n >= 13 && s.cards {
		var digits [19]byte
		d := digits[:0]
		for _, c := range buf[j:k] {
			if c-'0' <= 9 {
				d = append(d, c-'0')
			}
		}
		if luhn(d) {
			prefix := 0
			for _, x := range d[:6] {
				prefix = prefix*10 + int(x)
			}
			if knownIIN(prefix, n) {
				s.c.Cards++
			}
		}
	}
	if n == 9 && seps == 2 && dashes == 2 && groups == [3]int{3, 2, 4} && s.ssns && validSSN(buf, j) {
		s.c.SSNs++
	}
	return k, false
}

// luhn checks the Luhn check digit of d.
func luhn(d []byte) bool {
	sum := 0
	for i, double := len(d)-1, false; i >= 0; i-- {
		v := int(d[i])
		if double {
			v = luhnDouble[v]
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

var luhnDouble = [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// validSSN checks AAA-GG-SSSS at buf[j:]: no area 000, 666 or 900-999, no
// group 00, no serial 0000.
func validSSN(buf []byte, j int) bool {
	num := func(b []byte) int {
		v := 0
		for _, c := range b {
			v = v*10 + int(c-'0')
		}
		return v
	}
	area, group, serial := num(buf[j:j+3]), num(buf[j+4:j+6]), num(buf[j+7:j+11])
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

// knownIIN reports whether a card number of n digits whose first six
// digits are p has a common issuer prefix: Visa 4; Mastercard 51-55,
// 2221-2720; American Express 34, 37; Discover 6011, 644-649, 65; Diners
// 300-305, 36, 38, 39; JCB 3528-3589; UnionPay 62; Maestro 50, 56-58, 67.
func knownIIN(p, n int) bool {
	p1, p2, p3, p4 := p/100000, p/10000, p/1000, p/100
	switch {
	case p1 == 4:
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return n == 16
	case p2 == 34 || p2 == 37:
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p2 == 62:
		return n >= 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39:
		return n >= 14
	case p4 >= 3528 && p4 <= 3589:
		return n >= 16
	case p2 == 50, p2 >= 56 && p2 <= 58, p2 == 67:
		return n >= 13
	}
	return false
}

// iban parses an IBAN whose check digits start at buf[j] (the country code
// is buf[j-2:j]).
func (s *scanner) iban(buf []byte, j int, eof bool) (int, bool) {
	if j < 2 {
		return j + 1, false
	}
	b := j - 2
	if c, _ := s.at(buf, b, eof); c&cUpper == 0 {
		return j + 1, false
	}
	if c, _ := s.at(buf, b-1, eof); c&cAlnum != 0 {
		return j + 1, false
	}
	length := ibanLength[string(buf[b:j])]
	if length == 0 {
		return j + 1, false
	}
	c, more := s.at(buf, j+1, eof)
	if more {
		return 0, true
	}
	if c&cDigit == 0 {
		return j + 1, false
	}
	r := 0
	count, k := 4, j+2
	for count < length {
		c, more := s.at(buf, k, eof)
		if more {
			return 0, true
		}
		switch {
		case c&cDigit != 0:
			r = (r*10 + int(buf[k]-'0')) % 97
		case c&cUpper != 0:
			r = (r*100 + int(buf[k]-'A') + 10) % 97
		case k < len(buf) && buf[k] == ' ' && count%4 == 0 && k > 0 && buf[k-1] != ' ':
			k++
			continue
		default:
			return j + 1, false
		}
		count++
		k++
	}
	if c, more := s.at(buf, k, eof); more {
		return 0, true
	} else if c&cAlnum != 0 {
		return j + 1, false
	}
	for _, ch := range buf[b:j] {
		r = (r*100 + int(ch-'A') + 10) % 97
	}
	r = (r*100 + int(buf[j]-'0')*10 + int(buf[j+1]-'0')) % 97
	if r == 1 {
		s.c.IBANs++
		return k, false
	}
	return j + 1, false
}

// email parses an address around the '@' at buf[j].
func (s *scanner) email(buf []byte, j int, eof bool) (int, bool) {
	if !s.emails {
		return j + 1, false
	}
	k := j - 1
	for k >= 0 && j-k <= 65 && class[buf[k]]&cLocal != 0 {
		k--
	}
	local := j - 1 - k
	if local < 1 || local > 64 || (k < 0 && !s.atStart) {
		return j + 1, false
	}
	e := j + 1
	for {
		c, more := s.at(buf, e, eof)
		if more {
			return 0, true
		}
		if c&cDomain == 0 {
			break
		}
		e++
		if e-j > 254 {
			return e, false
		}
	}
	d := bytes.TrimRight(buf[j+1:e], ".")
	dot := bytes.LastIndexByte(d, '.')
	if dot <= 0 || bytes.Contains(d, []byte("..")) || d[0] == '.' {
		return max(e, j+1), false
	}
	tld := d[dot+1:]
	if len(tld) < 2 {
		return e, false
	}
	for _, c := range tld {
		if class[c]&(cUpper|cLower) == 0 {
			return e, false
		}
	}
	s.c.Emails++
	return e, false
}

func (s *scanner) patterns(p []byte) {
	for len(p) > 0 {
		seg := p[:min(len(p), s.window-len(s.win))]
		full := false
		if k := bytes.IndexByte(seg, '\n'); k >= 0 {
			seg, full = seg[:k+1], true
		}
		s.win = append(s.win, seg...)
		if full || len(s.win) >= s.window {
			s.runPatterns()
		}
		p = p[len(seg):]
	}
}

func (s *scanner) runPatterns() {
	for i, re := range s.pats {
		s.c.Patterns[i] += len(re.FindAllIndex(s.win, -1))
	}
	s.win = s.win[:0]
}

// fileType names the type of a stream from its first bytes.
func fileType(h []byte) string {
	has := func(off int, magic string) bool {
		return len(h) >= off+len(magic) && string(h[off:off+len(magic)]) == magic
	}
	switch {
	case has(0, "\x7fELF"):
		return "elf"
	case has(0, "MZ"):
		return "pe"
	case has(0, "\xfe\xed\xfa\xce"), has(0, "\xfe\xed\xfa\xcf"), has(0, "\xce\xfa\xed\xfe"),
		has(0, "\xcf\xfa\xed\xfe"), has(0, "\xca\xfe\xba\xbe"):
		return "macho"
	case has(0, "PK\x03\x04"), has(0, "PK\x05\x06"), has(0, "PK\x07\x08"):
		return "zip"
	case has(0, "Rar!\x1a\x07"):
		return "rar"
	case has(0, "7z\xbc\xaf\x27\x1c"):
		return "7z"
	case has(0, "\x1f\x8b"):
		return "gzip"
	case has(257, "ustar"):
		return "tar"
	}
	return ""
}

// ibanLength is the IBAN length of each country that has IBANs (SWIFT's
// IBAN registry).
var ibanLength = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
	"BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
	"EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
	"GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
	"JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
	"MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
	"NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
	"SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
	"TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
