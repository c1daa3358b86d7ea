package local

import (
	"errors"
	"strings"
	"testing"
)

// testParams keep the tests fast; DefaultParams are tested once.
var testParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashRoundTrip(t *testing.T) {
	s, err := HashPassword("correct horse", testParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q", s)
	}
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != s {
		t.Fatalf("String() = %q, want %q", h.String(), s)
	}
	if !h.Match("correct horse") || h.Match("correct horsE") || h.Match("") {
		t.Fatal("Match is wrong")
	}
	s2, _ := HashPassword("correct horse", testParams)
	if s2 == s {
		t.Fatal("two hashes of one password share a salt")
	}
}

func TestDefaultParams(t *testing.T) {
	s, err := HashPassword("pw", DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	if h.Params != DefaultParams || !h.Match("pw") {
		t.Fatalf("params %+v", h.Params)
	}
}

// A hash from the reference implementation's tests (phc-winner-argon2
// src/test.c): parameters are taken from the string, not the defaults.
func TestParseHashReference(t *testing.T) {
	h, err := ParseHash("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	if err != nil {
		t.Fatal(err)
	}
	if h.Params != (Params{Memory: 65536, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32}) {
		t.Fatalf("params %+v", h.Params)
	}
	if !h.Match("password") || h.Match("Password") {
		t.Fatal("reference vector does not match")
	}
}

func TestParseHashErrors(t *testing.T) {
	salt, key := "c29tZXNhbHRzb21lc2FsdA", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8"
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "want $argon2id"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, "not argon2id"},
		{"bcrypt", "$2y$10$abcdefghijklmnopqrstuuJ1Sx7Gq7Y8eI9m0nP2qQ3rS4tU5vW6", "want $argon2id"},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, "version"},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, "want $argon2id"},
		{"order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, "m=M,t=T,p=P"},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key, "m=M,t=T,p=P"},
		{"sign", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key, "not a decimal"},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, "not a decimal"},
		{"p overflow", "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key, "out of range"},
		{"m overflow", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key, "out of range"},
		{"t zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, "t=0"},
		{"t huge", "$argon2id$v=19$m=64,t=65,p=1$" + salt + "$" + key, "t=65"},
		{"p zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, "p=0"},
		{"m small", "$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key, "m=7"},
		{"m huge", "$argon2id$v=19$m=2097152,t=1,p=1$" + salt + "$" + key, "m=2097152"},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ=$" + key, "salt"},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, "salt is outside"},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5", "key is outside"},
		{"bad key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$!!!!", "key is not"},
		{"trailing", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", "want $argon2id"},
		{"long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 600), "longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHash(tc.in)
			if err == nil || !errors.Is(err, ErrHash) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseHash = %v, want an ErrHash saying %q", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), tc.in) {
				t.Fatalf("the error quotes the hash: %v", err)
			}
		})
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8")
	f.Add("$argon2id$v=19$m=,t=,p=$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			return
		}
		// parse -> format -> parse is stable, and parsed bounds hold.
		if err := h.Params.Validate(); err != nil {
			t.Fatalf("parsed out-of-bounds params: %v", err)
		}
		h2, err := ParseHash(h.String())
		if err != nil || h2.String() != h.String() {
			t.Fatalf("round trip: %q -> %q (%v)", s, h.String(), err)
		}
		if h.String() != s {
			t.Fatalf("accepted a non-canonical form %q (canonical %q)", s, h.String())
		}
	})
}
