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
	i, more := s.blocks(buf, s.pos, eof)
	for !more && i < len(buf) {
		j := nextAnchor(buf, i)
		if j < 0 {
			i = len(buf)
			break
		}
		var end int
		prev := byte(' ') // for j == 0: not a boundary, digit decides
		if j > 0 {
			prev = buf[j-1]
		}
		switch {
		case buf[j] == '@':
			end, more = s.email(buf, j, eof)
		case class[prev]&(cAlnum|cSep) == 0:
			// A run after a boundary (digit's last case, inlined): the
			// common number alone, fewer than 13 digits and no separator
			// after them, counts nothing.
			k := digitsEnd(buf, j+1)
			if k < len(buf) && k-j < 13 && class[buf[k]]&cSep == 0 {
				i = k
				continue
			}
			end, more = s.run(buf, j, k, eof)
		default:
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

// nextAnchor returns the index of the first byte of buf from i that may
// start a token, -1 if none: an '@', or a digit followed by a byte in
// 0x20-0x39 (a space, a dash, a digit, and some punctuation) or by the end
// of buf. A digit followed by anything else is a token of one digit, which
// no detector counts and whose parse would only skip it (inside letters
// and digits, a run no token starts in, the parse of the next digit skips
// the rest).
//
// It tests eight bytes at a time, each with the byte after it. Prose has
// few bytes in 0x30-0x40 and most of them start a token: a cheap test
// skips the words without any. Binary data has many that start nothing:
// at the first such word, the search goes on in nextAnchorDense, which
// has no branch per word.
func nextAnchor(buf []byte, i int) int {
	for ; i+9 <= len(buf); i += 8 {
		x := binary.LittleEndian.Uint64(buf[i:])
		t, ascii := x&(ones*127), ^x&high
		r := (t + ones*(127-0x2f)) & (ones*(127+0x41) - t) & ascii // 0x30-0x40: digits, :;<=>?@
		if r == 0 {
			continue
		}
		if m := exact(t, ascii, r, buf[i+8]); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
		return nextAnchorDense(buf, i+8)
	}
	return anchorTail(buf, i)
}

// nextAnchorDense is nextAnchor without the first test.
func nextAnchorDense(buf []byte, i int) int {
	for ; i+9 <= len(buf); i += 8 {
		x := binary.LittleEndian.Uint64(buf[i:])
		t, ascii := x&(ones*127), ^x&high
		r := (t + ones*(127-0x2f)) & (ones*(127+0x41) - t) & ascii
		if m := exact(t, ascii, r, buf[i+8]); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	return anchorTail(buf, i)
}

// exact narrows r (the bytes in 0x30-0x40 of a word; t: its low seven
// bits, ascii: its bytes below 0x80) to the anchors: the digits followed
// by a byte in 0x20-0x39 (after: the byte after the word), and '@'.
func exact(t, ascii, r uint64, after byte) uint64 {
	w := (t + ones*(127-0x1f)) & (ones*(127+0x3a) - t) & ascii // 0x20-0x39
	next := w>>8 | contNext[after]
	return r & (w&next | ^w&(t+ones*(127-0x3f))) // in r and w: a digit; in r, not in w and above 0x3f: '@'
}

// anchorTail is nextAnchor byte by byte, for the last bytes of buf.
func anchorTail(buf []byte, i int) int {
	for ; i < len(buf); i++ {
		c := buf[i]
		if c == '@' || (c-'0' <= 9 && (i+1 == len(buf) || buf[i+1]-0x20 <= 0x39-0x20)) {
			return i
		}
	}
	return -1
}

// contNext[b] is the top bit of a word, set when b is in 0x20-0x39: the
// byte after a word's last one (nextAnchor).
var contNext [256]uint64

func init() {
	for b := 0x20; b <= 0x39; b++ {
		contNext[b] = 1 << 63
	}
}

// between has the high bit of each byte of x that is in m+1..n-1 set, and
// no other bit: "Determine if a word has a byte between m and n" (Bit
// Twiddling Hacks, S. E. Anderson); exact per byte for n <= 128, as no
// byte's sum or difference carries into the next.
func between(x, m, n uint64) uint64 {
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
	cSep    // ' ' and '-', which may join the groups of a run
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
		case c == '.':
			k = cLocal | cDomain
		case c == '-':
			k = cLocal | cDomain | cSep
		case c == ' ':
			k = cSep
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
	k := digitsEnd(buf, j)
	if k < len(buf) && k-j < 13 && buf[k] != ' ' && buf[k] != '-' {
		return k, false
	}
	return s.run(buf, j, k, eof)
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

// run parses a run of digits from j (its first digits end at end):
// digits, each pair of them possibly separated by one space or dash that
// joins them (joins: groups of at most maxGroup digits on both sides).
func (s *scanner) run(buf []byte, j, end int, eof bool) (int, bool) {
	var (
		n            int
		groups       [3]int
		g            int // the group index
		dashes, seps int
	)
	k := j
	for {
		// The digits of a group: from gs to end.
		gs := k
		k = end
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
			if c2&cDigit != 0 {
				// joins, with the group's length known: the byte before gs
				// is not a digit.
				end = digitsEnd(buf, k+1)
				right := end - (k + 1)
				if end == len(buf) && !eof && right <= maxGroup {
					return 0, true // the next group may go on
				}
				if k-gs <= maxGroup && right <= maxGroup {
					if buf[k] == '-' {
						dashes++
					}
					seps++
					g++
					k++
					continue
				}
			}
		}
		if c&(cUpper|cLower) != 0 {
			return skipAlnum(buf, k), false // not standing alone
		}
		break
	}
	if n >= 13 && s.cards && cardNumber(buf[j:k], n) {
		s.c.Cards++
	}
	if n == 9 && seps == 2 && dashes == 2 && groups == [3]int{3, 2, 4} && s.ssns && validSSN(buf, j) {
		s.c.SSNs++
	}
	return k, false
}

// digitsEnd returns the end of the digits from k (or of buf), eight
// bytes at a time.
func digitsEnd(buf []byte, k int) int {
	for ; k+8 <= len(buf); k += 8 {
		if nd := ^between(binary.LittleEndian.Uint64(buf[k:]), 0x2f, 0x3a) & high; nd != 0 {
			return k + bits.TrailingZeros64(nd)/8
		}
	}
	for k < len(buf) && buf[k]-'0' <= 9 {
		k++
	}
	return k
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
