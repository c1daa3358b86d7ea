package dlp

import (
	"encoding/binary"
	"math/bits"
)

// The block pass: before the byte-wise scan, the buffer is read 64 bytes
// at a time into bitmaps (bit k: byte k of the block) of its digits,
// separators, letters and '@', and only the tokens some detector
// may count are parsed. The bitmaps give, without a branch per byte:
//
//   - the runs of 13 digits or more (a card without separators);
//   - the digit, separator, digit triples (a run in groups: a card or an
//     SSN), unless the digits and separators around them hold fewer than
//     9 digits (a date, a time, "1-2");
//   - the runs after two letters (an IBAN's check digits follow its
//     uppercase country code);
//   - the '@' (addresses).
//
// Every other token is a run of digits that no detector counts, whose
// parse would end inside its word: the short numbers alone of a CSV file
// ("12345,", "67.89") are not looked at one by one. The tokens found are
// parsed by the byte-wise parsers from the run's first digit, in order.
// So the counts are the byte-wise scan's (the reference scanner and the
// differential tests check that).

const blockSize = 64

// magic7 gathers the high bits of a word's bytes into its top byte: bit
// 8i+7 lands on bit 56+i, and no two products meet.
const magic7 = 0x0002040810204081

const lo7 = ones * 0x7f

// classes8 returns the bitmaps (low eight bits) of the digits and of the
// bytes 0x40-0x7f (letters, and a few more) of the eight bytes of x, and
// the high bits of its '@' bytes.
func classes8(x uint64) (d, l, at uint64) {
	t, ascii := x&lo7, ^x&high
	d = (t + ones*(0x80-'0')) & (ones*(0x80+'9') - t) & ascii
	l = (t + ones*(0x80-0x40)) & ascii
	at = ^((t ^ ones*'@') + lo7) & ascii
	return d * magic7 >> 56, l * magic7 >> 56, at
}

// seps8 returns the bitmap of the separators (' ', '-') of x.
func seps8(x uint64) uint64 {
	t := x & lo7
	return (^(((t ^ ones*' ') + lo7) & ((t ^ ones*'-') + lo7)) &^ x & high) * magic7 >> 56
}

// block is the bitmaps of 64 bytes.
type block struct {
	d, l, at uint64 // digits, 0x40-0x7f, '@'
	s        uint64 // separators, when a non-digit is between two digits
}

// classes returns the bitmaps of the 64 bytes at b but s.
func classes(b []byte) (k block) {
	b = b[:blockSize]
	d, l, a := classes8(binary.LittleEndian.Uint64(b[0:]))
	at := a
	k.d, k.l = d, l
	d, l, a = classes8(binary.LittleEndian.Uint64(b[8:]))
	k.d, k.l, at = k.d|d<<8, k.l|l<<8, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[16:]))
	k.d, k.l, at = k.d|d<<16, k.l|l<<16, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[24:]))
	k.d, k.l, at = k.d|d<<24, k.l|l<<24, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[32:]))
	k.d, k.l, at = k.d|d<<32, k.l|l<<32, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[40:]))
	k.d, k.l, at = k.d|d<<40, k.l|l<<40, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[48:]))
	k.d, k.l, at = k.d|d<<48, k.l|l<<48, at|a
	d, l, a = classes8(binary.LittleEndian.Uint64(b[56:]))
	k.d, k.l, at = k.d|d<<56, k.l|l<<56, at|a
	if at != 0 { // rare: the '@' again, gathered
		for w := uint(0); w < blockSize; w += 8 {
			_, _, a := classes8(binary.LittleEndian.Uint64(b[w:]))
			k.at |= a * magic7 >> 56 << w
		}
	}
	return k
}

// seps returns the separators of the 64 bytes at b.
func seps(b []byte) uint64 {
	b = b[:blockSize]
	return seps8(binary.LittleEndian.Uint64(b[0:])) | seps8(binary.LittleEndian.Uint64(b[8:]))<<8 |
		seps8(binary.LittleEndian.Uint64(b[16:]))<<16 | seps8(binary.LittleEndian.Uint64(b[24:]))<<24 |
		seps8(binary.LittleEndian.Uint64(b[32:]))<<32 | seps8(binary.LittleEndian.Uint64(b[40:]))<<40 |
		seps8(binary.LittleEndian.Uint64(b[48:]))<<48 | seps8(binary.LittleEndian.Uint64(b[56:]))<<56
}

// shl shifts the bitmap x left by n (bit k: byte k-n), the block before
// it (prev) filling the low bits.
func shl(x, prev uint64, n uint) uint64 { return x<<n | prev>>(64-n) }

// blocks parses the tokens a detector may count in the whole blocks of
// buf from i (see above). It returns the position the byte-wise scan goes
// on from: the end of the last token parsed, or the blocks' last byte that
// no token can cover (no digit, letter, separator or '@') if it is after
// that. more: the token at next needs more data.
func (s *scanner) blocks(buf []byte, i int, eof bool) (next int, more bool) {
	if len(buf)-i < 2*blockSize {
		return i, false
	}
	var (
		long, joined, iban, at uint64 // the kinds of tokens looked for
	)
	if s.cards {
		long = ^uint64(0)
	}
	if s.cards || s.ssns {
		joined = ^uint64(0)
	}
	need := 13 // the fewest digits a run in groups is counted with
	if s.ssns {
		need = 9
	}
	if s.ibans {
		iban = ^uint64(0)
	}
	if s.emails {
		at = ^uint64(0)
	}
	// The block before the first: the bytes before i, or nothing (a
	// boundary) before the buffer.
	var pv block
	if p := i; p >= blockSize {
		pv = classes(buf[p-blockSize:])
	} else {
		var pad [blockSize]byte
		copy(pad[blockSize-p:], buf[:p])
		pv = classes(pad[:])
	}
	pst := pv.d &^ (pv.d << 1)
	pa2 := pv.d & (pv.d << 1)
	pa4 := pa2 & (pa2 << 2)
	p := i
	for ; p+blockSize <= len(buf); p += blockSize {
		k := classes(buf[p:])
		d1 := shl(k.d, pv.d, 1) // a digit before
		st := k.d &^ d1         // the first digits of runs
		a2 := k.d & d1          // bit k: bytes k-1 and k are digits
		a4 := a2 & shl(a2, pa2, 2)
		a12 := a4 & shl(a4, pa4, 4) & shl(a4, pa4, 8)
		x13 := a12 & shl(st, pst, 12) & long        // the 13th digit of a run
		q := k.d &^ d1 & shl(k.d, pv.d, 2) & joined // digit, non-digit, digit
		if q != 0 {
			k.s = seps(buf[p:])
			q &= k.s<<1 | sepBefore(buf, p) // digit, separator, digit
			q = fewDigits(k, q, need)
		}
		ib := st & shl(k.l, pv.l, 1) & shl(k.l, pv.l, 2) & iban // a run after two letters
		cand := x13 | q | ib | k.at&at
		for cand != 0 {
			b := bits.TrailingZeros64(cand)
			cand &= cand - 1
			c := p + b
			if c < i {
				continue // inside the last token parsed
			}
			var (
				j, end int
				more   bool
			)
			switch {
			case buf[c] == '@':
				j = c
				end, more = s.email(buf, c, eof)
			case x13>>b&1 != 0:
				j = c - 12
				if j < i {
					continue // a run begun before i: inside a token
				}
				if j > 0 && class[buf[j-1]]&(cAlnum|cSep) == 0 {
					// After a boundary (digit's last case): the run's
					// first digits end at the block's first non-digit
					// after c.
					e := len(buf)
					if r := ^k.d >> b; r != 0 {
						e = c + bits.TrailingZeros64(r)
					} else if p+blockSize < len(buf) {
						e = digitsEnd(buf, p+blockSize)
					}
					end, more = s.long(buf, j, e, eof)
					break
				}
				end, more = s.digit(buf, j, eof)
			case q>>b&1 != 0:
				j = s.groupStart(buf, k.d, p, c-2, i)
				if j < i {
					continue
				}
				end, more = s.digit(buf, j, eof)
			default:
				j = c
				end, more = s.digit(buf, j, eof)
			}
			if more {
				return j, true
			}
			i = end
		}
		pv, pst, pa2, pa4 = k, st, a2, a4
	}
	// The byte-wise scan goes on after the last byte of the blocks that is
	// no digit, letter, separator or '@': a token that crosses p, whose
	// first digits are before p, starts after it.
	for k := p - 1; k > i && k >= p-blockSize; k-- {
		if c := buf[k]; class[c]&(cAlnum|cSep) == 0 && c != '@' {
			return k, false
		}
	}
	return i, false
}

// long parses a run whose first digits, j to e, are 13 or more: run()
// when no separator can join them (the group is longer than maxGroup).
func (s *scanner) long(buf []byte, j, e int, eof bool) (int, bool) {
	n := e - j
	if n > 19 {
		return skipAlnum(buf, e), false
	}
	if e == len(buf) {
		if !eof {
			return 0, true
		}
	} else if class[buf[e]]&(cUpper|cLower) != 0 {
		return skipAlnum(buf, e), false
	}
	if s.cards && cardNumber(buf[j:e], n) {
		s.c.Cards++
	}
	return e, false
}

// sepBefore is 1 if the byte before p is a separator.
func sepBefore(buf []byte, p int) uint64 {
	if p > 0 && class[buf[p-1]]&cSep != 0 {
		return 1
	}
	return 0
}

// groupStart returns the first digit of the run whose last digit is
// buf[e] (d: the digits of the block at p), i-1 if the run starts before i.
func (s *scanner) groupStart(buf []byte, d uint64, p, e, i int) int {
	if b := e - p; b > 0 {
		if z := ^d & (1<<b - 1); z != 0 {
			return p + bits.Len64(z)
		}
	}
	j := e
	for j > i && buf[j-1]-'0' <= 9 {
		j--
	}
	if j == i && i > 0 && buf[i-1]-'0' <= 9 {
		return i - 1
	}
	return j
}

// fewDigits clears the bits of q (digit, separator, digit; the group
// before the separator ends at bit-2) whose group starts in the block k
// and whose digits and separators from there hold fewer than need digits:
// no run that starts in them is counted, and none goes past them.
func fewDigits(k block, q uint64, need int) uint64 {
	ds := k.d | k.s
	for r := q; r != 0; r &= r - 1 {
		b := bits.TrailingZeros64(r)
		if b < 3 {
			continue
		}
		z := ^k.d & (1<<(b-2) - 1)
		if z == 0 {
			continue // the group starts before the block
		}
		j := bits.Len64(z) // the group's first digit
		rest := ^ds >> j
		if rest == 0 {
			continue // they go on in the next block
		}
		if bits.OnesCount64(k.d>>j&(1<<bits.TrailingZeros64(rest)-1)) < need {
			q &^= 1 << b
		}
	}
	return q
}
