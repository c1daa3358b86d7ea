package dlp

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// benchText is prose with a number, a date or an address now and then.
func benchText(n int) []byte {
	r := rand.New(rand.NewPCG(5, 6))
	words := []string{"the", "transfer", "of", "files", "between", "partners", "is", "logged", "and", "checked",
		"order", "invoice", "total", "amount", "due", "2026-11-30", "42", "EUR", "bob@example.com", "Net"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(" \n"[r.IntN(12)/11])
	}
	return b.Bytes()[:n]
}

func benchCSV(n int) []byte {
	r := rand.New(rand.NewPCG(7, 8))
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString("2026-11-30,")
		b.WriteString(string(rune('A' + r.IntN(26))))
		b.WriteString(",12345,67.89,4111111111111111\n")
	}
	return b.Bytes()[:n]
}

func bench(b *testing.B, p *Policy, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s := newScanner(p)
		for i := 0; i < len(data); i += 32 << 10 {
			s.write(data[i:min(i+32<<10, len(data))])
		}
		s.finish()
	}
}

// BenchmarkBuiltin: the built-in set (cards, IBANs, SSNs, emails, file
// type) on prose and on a digit-heavy CSV; then with keywords and a
// pattern.
func BenchmarkBuiltin(b *testing.B) {
	text, csv := benchText(4<<20), benchCSV(4<<20)
	p := testPolicy(b, nil)
	b.Run("text", func(b *testing.B) { bench(b, p, text) })
	b.Run("csv", func(b *testing.B) { bench(b, p, csv) })
	b.Run("binary", func(b *testing.B) {
		r := rand.New(rand.NewPCG(9, 9))
		bin := make([]byte, 4<<20)
		for i := range bin {
			bin[i] = byte(r.Uint32())
		}
		bench(b, p, bin)
	})
	kw := testPolicy(b, func(c *Config) { c.Keywords = Rule{Enabled: true}; c.KeywordList = []string{"confidential", "secret"} })
	b.Run("text+keywords", func(b *testing.B) { bench(b, kw, text) })
	re := testPolicy(b, func(c *Config) { c.Patterns = []Pattern{{Name: "p", Regexp: `PRJ-[0-9]{4}`}} })
	b.Run("text+regexp", func(b *testing.B) { bench(b, re, text) })
}
