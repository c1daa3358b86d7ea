package dlp

import "encoding/binary"

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
	switch p1 := p / 100000; p1 {
	case 4:
		return n == 13 || n == 16 || n == 19
	case 2:
		p4 := p / 100
		return p4 >= 2221 && p4 <= 2720 && n == 16
	case 3:
		switch p2 := p / 10000; {
		case p2 == 34 || p2 == 37:
			return n == 15
		case p2 == 36 || p2 == 38 || p2 == 39, p/1000 <= 305:
			return n >= 14
		case p2 == 35:
			p4 := p / 100
			return p4 >= 3528 && p4 <= 3589 && n >= 16
		}
	case 5:
		switch p2 := p / 10000; {
		case p2 >= 51 && p2 <= 55:
			return n == 16
		case p2 == 50, p2 >= 56 && p2 <= 58:
			return n >= 13
		}
	case 6:
		switch p2 := p / 10000; {
		case p2 == 65 || p2 == 62, p/100 == 6011, p2 == 64 && p/1000 >= 644:
			return n >= 16
		case p2 == 67:
			return n >= 13
		}
	}
	return false
}

// cardNumber reports whether the n digits of b (a run: digits, spaces and
// dashes) are a card number: the Luhn check and a known issuer prefix.
func cardNumber(b []byte, n int) bool {
	sum, odd := 0, 0
	i := len(b)
	if n == len(b) {
		// Digits only: eight at a time from the right, where the bytes
		// 0, 2, 4 and 6 of each word are the doubled ones.
		for ; i >= 8; i -= 8 {
			v := binary.LittleEndian.Uint64(b[i-8:]) - ones*'0' // each byte 0-9
			ev := v & evens
			big := (ev + ones*(128-5)) & high >> 7 // the doubled digits of 5 or more: 2d-9, not 2d
			sum += int((v+ev)*ones>>56) - 9*int(big*ones>>56)
		}
	}
	for i--; i >= 0; i-- {
		if c := b[i] - '0'; c <= 9 {
			sum += luhnAdd[odd][c]
			odd ^= 1
		}
	}
	if sum%10 != 0 {
		return false
	}
	if n == len(b) {
		// The first eight digits as a number, in three steps: pairs,
		// fours, eight (the first digit is the lowest byte).
		v := binary.LittleEndian.Uint64(b) - ones*'0'
		v = (v*10 + v>>8) & 0x00ff00ff00ff00ff
		v = (v*100 + v>>16) & 0x0000ffff0000ffff
		v = (v*10000 + v>>32) & 0xffffffff
		return knownIIN(int(v/100), n)
	}
	prefix, m := 0, 0
	for _, c := range b {
		if c-'0' <= 9 {
			prefix = prefix*10 + int(c-'0')
			if m++; m == 6 {
				break
			}
		}
	}
	return knownIIN(prefix, n)
}

// evens are the bytes 0, 2, 4 and 6 of a word.
const evens = 0x00ff00ff00ff00ff

// luhnAdd is what a digit adds to the Luhn sum: itself, or doubled (the
// second, fourth... from the right).
var luhnAdd = [2][10]int{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 2, 4, 6, 8, 1, 3, 5, 7, 9}}
