package dlp

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
