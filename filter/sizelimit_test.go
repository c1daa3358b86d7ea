package filter

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestSizeLimit(t *testing.T) {
	cases := []struct {
		name   string
		limit  int64
		start  int64
		writes []int
		cutAt  int // index of the write that fails; -1: none
	}{
		{"below", 10, 0, []int{3, 3, 3}, -1},
		{"exactly", 10, 0, []int{5, 5}, -1},
		{"one byte over", 10, 0, []int{5, 5, 1}, 2},
		{"one buffer over", 10, 0, []int{4, 7}, 1},
		{"first buffer over", 10, 0, []int{11}, 0},
		{"resumed fits", 10, 6, []int{4}, -1},
		{"resumed over", 10, 6, []int{5}, 0},
		{"empty file", 1, 0, nil, -1},
		{"empty writes", 1, 0, []int{0, 0, 1, 0}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := NewSizeLimit(c.limit, c.start)
			var chain Chain = []Filter{s}
			cut := -1
			for i, n := range c.writes {
				err := chain.Write(make([]byte, n))
				if err != nil {
					cut = i
					if !errors.Is(err, ErrSizeLimit) {
						t.Errorf("error %v does not wrap ErrSizeLimit", err)
					}
					// As the relay returns it, wrapped or not.
					v, ok := VetoOf(fmt.Errorf("relay: %w", err))
					if !ok || !v.Veto || v.Code != 552 {
						t.Errorf("VetoOf = %+v %v, want a 552 veto", v, ok)
					}
					break
				}
			}
			if cut != c.cutAt {
				t.Fatalf("cut at write %d, want %d", cut, c.cutAt)
			}
			if s.Size() > c.limit {
				t.Errorf("counted %d past the limit %d: a refused buffer was counted as passed", s.Size(), c.limit)
			}
			v, err := chain.Finish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if (cut >= 0) != v.Veto || (v.Veto && v.Code != StatusExceededStorage) {
				t.Errorf("Finish = %+v, cut %v", v, cut >= 0)
			}
			if cut >= 0 && s.Write([]byte{1}) == nil {
				t.Error("a write after the cut passed")
			}
		})
	}
	if _, ok := VetoOf(errors.New("other")); ok {
		t.Error("VetoOf found a veto in a plain error")
	}
}

func TestOffset(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "100": 100, "-5": 0, "x": 0, "99999999999999999999": 0} {
		if got := Offset(Meta{Offset: in}); got != want {
			t.Errorf("Offset(%q) = %d, want %d", in, got, want)
		}
	}
}
