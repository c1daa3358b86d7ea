package dlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/filter"
)

func testPolicy(t testing.TB, mod func(*Config)) *Policy {
	t.Helper()
	cfg := Defaults()
	cfg.Enabled = true
	cfg.Emails.Threshold = 0
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// countChunks scans data written in the chunks sizes gives (cycled).
func countChunks(p *Policy, data []byte, sizes func() int) Counts {
	s := newScanner(p)
	for len(data) > 0 {
		n := min(max(sizes(), 1), len(data))
		s.write(data[:n])
		data = data[n:]
	}
	s.finish()
	return s.c
}

func count(p *Policy, data string) Counts {
	return countChunks(p, []byte(data), func() int { return len(data) })
}

func TestCards(t *testing.T) {
	p := testPolicy(t, nil)
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"4111111111111111", 1},
		{"card 4111 1111 1111 1111 end", 1},
		{"card 4111-1111-1111-1111.", 1},
		{"5555555555554444, 378282246310005; 6011111111111117", 3},
		{"3530111333300000, 30569309025904", 2},
		{"3530111333300000 30569309025904", 2},         // a space between numbers: two numbers
		{"4111 1111 1111 1111 5555 5555 5555 4444", 0}, // groups joined: one run of 32 digits
		{"4111 111111 11111 1", 1},                     // any grouping of short groups joins
		{"3782 822463 10005", 1},                       // Amex's 4-6-5
		{"4111111 111111111", 0},                       // a group of 7: two runs
		{"4111111111111112", 0},                        // Luhn
		{"4111  1111 1111 1111", 0},                    // two separators: two runs
		{"x4111111111111111", 0},                       // not alone
		{"4111111111111111x", 0},                       // not alone
		{"94111111111111111", 0},                       // unknown prefix
		{"41111111111111110000", 0},                    // 20 digits
		{"1234567890123456", 0},                        // no known IIN
		{"4111111111111111\n4111111111111111", 2},
		{"0000000000000000", 0},
		{"37828224631000", 0}, // Amex is 15 digits
	} {
		if got := count(p, tc.in).Cards; got != tc.want {
			t.Errorf("cards in %q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestIBANs(t *testing.T) {
	p := testPolicy(t, nil)
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"DE89370400440532013000", 1},
		{"iban: DE89 3704 0044 0532 0130 00.", 1},
		{"GB82WEST12345698765432", 1},
		{"GB82 WEST 1234 5698 7654 32", 1},
		{"FR1420041010050500013M02606", 1},
		{"NL91ABNA0417164300 BE68539007547034 CH9300762011623852957", 3},
		{"DE88370400440532013000", 0},    // check digits
		{"DE8937040044053201300", 0},     // short
		{"DE893704004405320130001", 0},   // long
		{"XX89370400440532013000", 0},    // no such country
		{"aDE89370400440532013000", 0},   // not alone
		{"DE89 370 40044 0532013000", 0}, // a space not between groups of four
	} {
		if got := count(p, tc.in).IBANs; got != tc.want {
			t.Errorf("IBANs in %q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSSNs(t *testing.T) {
	p := testPolicy(t, nil)
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"ssn 123-45-6789", 1},
		{"078-05-1120 and 219-09-9999", 2},
		{"000-12-3456", 0},
		{"666-12-3456", 0},
		{"900-12-3456", 0},
		{"999-12-3456", 0},
		{"123-00-4567", 0},
		{"123-45-0000", 0},
		{"123 45 6789", 0},
		{"123456789", 0},
		{"123-45-67890", 0},
		{"1123-45-6789", 0},
		{"a123-45-6789", 0},
	} {
		if got := count(p, tc.in).SSNs; got != tc.want {
			t.Errorf("SSNs in %q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestEmails(t *testing.T) {
	p := testPolicy(t, nil)
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"mail john.smith+x@example.com.", 1},
		{"a@b.co, c@d.example.org; e@f", 2},
		{"@example.com", 0},
		{"a@localhost", 0},
		{"a@b.c", 0},
		{"a@b..com", 0},
		{"a@b.c0m", 0},
		{strings.Repeat("a", 65) + "@example.com", 0},
		{strings.Repeat("a", 64) + "@example.com", 1},
	} {
		if got := count(p, tc.in).Emails; got != tc.want {
			t.Errorf("emails in %q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestKeywordsAndPatterns(t *testing.T) {
	p := testPolicy(t, func(c *Config) {
		c.Keywords = Rule{Enabled: true}
		c.KeywordList = []string{"Confidential", "secret", "top secret"}
		c.Patterns = []Pattern{{Name: "project", Regexp: `PRJ-[0-9]{4}`}}
	})
	c := count(p, "TOP SECRET and confidential; Secrets\nPRJ-1234 PRJ-12 prj-5555 PRJ-9999\n")
	if c.Keywords != 5 { // top secret, secret (in it), confidential, secret (Secrets)
		// "top secret" + "secret" inside it + "confidential" + "secret" = 4
		if c.Keywords != 4 {
			t.Errorf("keywords: %d, want 4", c.Keywords)
		}
	}
	if c.Patterns[0] != 2 {
		t.Errorf("patterns: %d, want 2", c.Patterns[0])
	}
}

func TestFileTypes(t *testing.T) {
	tar := make([]byte, 512)
	copy(tar[257:], "ustar\x0000")
	for _, tc := range []struct {
		in   []byte
		want string
	}{
		{[]byte("\x7fELF\x02\x01\x01"), "elf"},
		{[]byte("MZ\x90\x00"), "pe"},
		{[]byte("\xcf\xfa\xed\xfe\x07"), "macho"},
		{[]byte("PK\x03\x04\x14\x00"), "zip"},
		{[]byte("Rar!\x1a\x07\x01\x00"), "rar"},
		{[]byte("7z\xbc\xaf\x27\x1c\x00\x04"), "7z"},
		{[]byte("\x1f\x8b\x08\x00"), "gzip"},
		{tar, "tar"},
		{[]byte("hello MZ"), ""},
		{[]byte("M"), ""},
	} {
		p := testPolicy(t, nil)
		got := countChunks(p, tc.in, func() int { return 1 }).FileType
		if got != tc.want {
			t.Errorf("type of %q: %q, want %q", tc.in[:min(8, len(tc.in))], got, tc.want)
		}
	}
}

// corpus is text with every kind of token, some cut at odd places.
func corpus(r *rand.Rand, n int) []byte {
	toks := []string{"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "4111111111111112",
		"DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "123-45-6789", "666-12-3456",
		"john@example.com", "x.y+z@mail.example.org", "secret", "PRJ-1234", "12345", "a1", "@", "-", " ", "\n",
		"lorem ipsum dolor sit amet", "2024-01-02", "AB12", "\x00\xff"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(toks[r.IntN(len(toks))])
		if r.IntN(3) > 0 {
			b.WriteByte(" \n,;."[r.IntN(5)])
		}
	}
	return b.Bytes()
}

func fullPolicy(t testing.TB) *Policy {
	return testPolicy(t, func(c *Config) {
		c.Keywords = Rule{Enabled: true}
		c.KeywordList = []string{"secret", "lorem"}
		c.Patterns = []Pattern{{Name: "p", Regexp: `PRJ-[0-9]+`}, {Name: "q", Regexp: `(?m)^lorem`}}
		c.PatternWindow = 256
	})
}

func TestChunkingInvariant(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	p := fullPolicy(t)
	for round := 0; round < 20; round++ {
		data := corpus(r, 2000+r.IntN(3000))
		whole := countChunks(p, data, func() int { return len(data) })
		if whole.Cards == 0 || whole.IBANs == 0 || whole.SSNs == 0 || whole.Emails == 0 {
			t.Fatalf("corpus without tokens: %+v", whole)
		}
		ones := countChunks(p, data, func() int { return 1 })
		random := countChunks(p, data, func() int { return 1 + r.IntN(97) })
		for _, got := range []Counts{ones, random} {
			if fmt.Sprint(got) != fmt.Sprint(whole) {
				t.Fatalf("round %d: chunked %+v, whole %+v", round, got, whole)
			}
		}
	}
}

func TestEveryTwoWaySplit(t *testing.T) {
	data := []byte("x 4111 1111 1111 1111, DE89 3704 0044 0532 0130 00 john@example.com 123-45-6789 secret.")
	p := fullPolicy(t)
	whole := countChunks(p, data, func() int { return len(data) })
	if whole.Cards != 1 || whole.IBANs != 1 || whole.Emails != 1 || whole.SSNs != 1 || whole.Keywords != 1 {
		t.Fatalf("whole: %+v", whole)
	}
	for cut := 1; cut < len(data); cut++ {
		first := true
		got := countChunks(p, data, func() int {
			if first {
				first = false
				return cut
			}
			return len(data)
		})
		if fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("cut at %d: %+v, want %+v", cut, got, whole)
		}
	}
}

// between is exact per byte for the ranges the scan uses, whatever the
// other bytes; exact (nextAnchor's mask) is its definition, byte by byte.
func TestBetweenAndExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, rg := range [][2]uint64{{0x2f, 0x41}, {0x2f, 0x3a}, {0x1f, 0x3a}, {0x3f, 0x41}} {
		for b := 0; b < 256; b++ {
			for pos := 0; pos < 8; pos++ {
				for _, fill := range []uint64{0x2020202020202020, r.Uint64(), r.Uint64(), 0xffffffffffffffff} {
					x := fill&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
					want := uint64(b) > rg[0] && uint64(b) < rg[1]
					if got := between(x, rg[0], rg[1])&(0x80<<(8*pos)) != 0; got != want {
						t.Fatalf("between(%#x, %#x, %#x) at byte %d: %v", x, rg[0], rg[1], pos, got)
					}
				}
			}
		}
	}
	var w [9]byte
	for round := 0; round < 200000; round++ {
		for i := range w {
			w[i] = byte(r.Uint32())
			if r.IntN(2) == 0 {
				w[i] = "0123456789 -@:?AZ"[r.IntN(17)]
			}
		}
		x := binary.LittleEndian.Uint64(w[:])
		t7, ascii := x&(ones*127), ^x&high
		m := exact(t7, ascii, between(x, 0x2f, 0x41), w[8])
		for k := 0; k < 8; k++ {
			want := w[k] == '@' || (w[k]-'0' <= 9 && w[k+1]-0x20 <= 0x39-0x20)
			if got := m&(0x80<<(8*k)) != 0; got != want {
				t.Fatalf("%q byte %d: %v", w, k, got)
			}
		}
	}
}

// cardFile is n card numbers in text of about size bytes, each number cut by
// a 4 KiB boundary when the file is written in 4 KiB chunks.
func cardFile(n, size int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		for b.Len()%4096 != 4090 {
			b.WriteByte('a' + byte(b.Len()%26))
			if b.Len()%61 == 0 {
				b.WriteByte('\n')
			}
		}
		b.WriteString(" 4111 1111 1111 1111 ")
	}
	for b.Len() < size {
		b.WriteString("filler text\n")
	}
	return b.Bytes()
}

func TestFilterBlocksUpload(t *testing.T) {
	var got []Finding
	cfg := Defaults()
	cfg.Enabled = true
	cfg.Cards = Rule{Enabled: true, Threshold: 10, Action: Block}
	p, err := New(cfg, func(f Finding) { got = append(got, f) })
	if err != nil {
		t.Fatal(err)
	}
	meta := filter.Meta{Session: "s1", Direction: filter.Upload, Path: "/f"}
	for _, tc := range []struct {
		n     int
		block bool
	}{{11, true}, {10, false}, {0, false}} {
		got = nil
		f := p.Filter(meta)
		data := cardFile(tc.n, 64<<10)
		for len(data) > 0 {
			k := min(4096, len(data))
			if err := f.Write(data[:k]); err != nil {
				t.Fatal(err)
			}
			data = data[k:]
		}
		v, err := f.Finish(context.Background())
		if err != nil || v.Veto != tc.block {
			t.Fatalf("%d cards: %+v %v", tc.n, v, err)
		}
		if tc.block {
			if v.Code != 550 || !strings.HasPrefix(v.Text, "Transfer blocked by content policy (ref ") {
				t.Fatalf("verdict %+v", v)
			}
			if len(got) != 1 || got[0].Detector != "cards" || got[0].Count != 11 || got[0].Action != Block ||
				!strings.Contains(v.Text, got[0].Ref) || got[0].Meta.Session != "s1" {
				t.Fatalf("findings %+v", got)
			}
		} else if len(got) != 0 {
			t.Fatalf("findings %+v", got)
		}
	}
}

func TestFilterCutsDownload(t *testing.T) {
	cfg := Defaults()
	cfg.Enabled, cfg.Directions = true, Both
	cfg.Cards = Rule{Enabled: true, Threshold: 1, Action: Block}
	p, _ := New(cfg, nil)
	f := p.Filter(filter.Meta{Direction: filter.Download})
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = f.Write([]byte("4111111111111111\n"))
	}
	v, ok := filter.VetoOf(err)
	if !ok || v.Code != 426 {
		t.Fatalf("download not cut: %v", err)
	}
	if p.Filter(filter.Meta{Direction: filter.Upload}) == nil {
		t.Fatal("both directions: no upload filter")
	}
	cfg.Directions = Uploads
	p, _ = New(cfg, nil)
	if p.Filter(filter.Meta{Direction: filter.Download}) != nil {
		t.Fatal("uploads only: a download filter")
	}
}

func TestDenyType(t *testing.T) {
	cfg := Defaults()
	cfg.Enabled, cfg.DenyTypes = true, []string{"executable"}
	var got []Finding
	p, _ := New(cfg, func(f Finding) { got = append(got, f) })
	f := p.Filter(filter.Meta{Direction: filter.Upload})
	_ = f.Write([]byte("\x7fE"))
	_ = f.Write([]byte("LF rest"))
	v, _ := f.Finish(context.Background())
	if !v.Veto || len(got) != 1 || got[0].Detector != "file_type:elf" {
		t.Fatalf("%+v %+v", v, got)
	}
}

func TestValidate(t *testing.T) {
	cfg := Defaults()
	cfg.Cards.Threshold = -1
	cfg.Patterns = []Pattern{{Name: "x", Regexp: "("}, {Regexp: "a"}}
	cfg.DenyTypes = []string{"exe"}
	cfg.Keywords.Enabled = true
	cfg.PatternWindow = 10
	err := cfg.Validate()
	for _, key := range []string{"cards.threshold", "patterns[0].regexp", "patterns[1].name", "file_types.deny[0]", "keywords.words", "patterns_window"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("no problem with %s in %v", key, err)
		}
	}
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
}
