package dlp

import (
	"bytes"
)

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
	dots := -1 // the second dot of the domain's first "..", -1: none
	for {
		c, more := s.at(buf, e, eof)
		if more {
			return 0, true
		}
		if c&cDomain == 0 {
			break
		}
		if dots < 0 && buf[e] == '.' && buf[e-1] == '.' && e > j+1 {
			dots = e
		}
		e++
		if e-j > 254 {
			return e, false
		}
	}
	// The domain, without its trailing dots: a name with a dot inside,
	// neither first nor doubled.
	end := e
	for end > j+1 && buf[end-1] == '.' {
		end--
	}
	d := buf[j+1 : end]
	dot := bytes.LastIndexByte(d, '.')
	if dot <= 0 || (dots >= 0 && dots < end) || d[0] == '.' {
		return e, false
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
