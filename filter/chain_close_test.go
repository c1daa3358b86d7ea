package filter

import (
	"context"
	"testing"
)

type closer struct {
	SHA256
	closed int
}

func (c *closer) Close() error { c.closed++; return nil }

// Chain.Close closes the filters that are io.Closers, once each, and
// leaves the others alone.
func TestChainClose(t *testing.T) {
	a, b := &closer{}, NewSHA256()
	Chain{a, b}.Close()
	if a.closed != 1 {
		t.Fatalf("closed %d times", a.closed)
	}
	if _, err := (Chain{b}).Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPartial(t *testing.T) {
	for _, tc := range []struct {
		m    Meta
		want bool
	}{
		{Meta{Verb: "STOR"}, false},
		{Meta{Verb: "STOR", Offset: "0"}, false},
		{Meta{Verb: "STOR", Offset: "10"}, true},
		{Meta{Verb: "RETR", Offset: "1"}, true},
		{Meta{Verb: "APPE"}, true},
		{Meta{Verb: "STOU"}, false},
	} {
		if got := Partial(tc.m); got != tc.want {
			t.Errorf("Partial(%+v) = %v", tc.m, got)
		}
	}
}
