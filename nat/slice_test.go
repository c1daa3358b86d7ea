package nat

import (
	"errors"
	"testing"
)

func TestPortRangeSlice(t *testing.T) {
	r := PortRange{Low: 50000, High: 50299}
	want := []PortRange{{50000, 50099}, {50100, 50199}, {50200, 50299}}
	for i, w := range want {
		got, err := r.Slice(3, i)
		if err != nil || got != w {
			t.Errorf("Slice(3, %d) = %v, %v; want %v", i, got, err, w)
		}
	}
	if got, err := r.Slice(1, 0); err != nil || got != r {
		t.Errorf("Slice(1, 0) = %v, %v; want the whole range", got, err)
	}
	for _, c := range []struct{ n, i int }{{0, 0}, {3, 3}, {3, -1}, {7, 0}} {
		if got, err := r.Slice(c.n, c.i); err == nil {
			t.Errorf("Slice(%d, %d) = %v, want an error", c.n, c.i, got)
		}
	}
}

func TestPortRangeOverlapsCovers(t *testing.T) {
	a, b, c := PortRange{10, 19}, PortRange{19, 30}, PortRange{20, 30}
	if !a.Overlaps(b) || !b.Overlaps(a) || a.Overlaps(c) {
		t.Error("Overlaps wrong")
	}
	if !(PortRange{10, 30}).Covers(b) || a.Covers(b) {
		t.Error("Covers wrong")
	}
}

func TestOrdinal(t *testing.T) {
	for name, want := range map[string]int{"ftpsgate-0": 0, "ftpsgate-12": 12, "my-gw-2.gw.ns.svc.cluster.local": 2} {
		if got, err := Ordinal(name); err != nil || got != want {
			t.Errorf("Ordinal(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"ftpsgate", "ftpsgate-", "gw-x", "gw-01", ""} {
		if _, err := Ordinal(name); !errors.Is(err, ErrNoOrdinal) {
			t.Errorf("Ordinal(%q) = %v, want ErrNoOrdinal", name, err)
		}
	}
}
