package main

import (
	"slices"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{10, 1, 1}, 1}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestRoundFigures: the table gets each figure's median, a note when
// rounds are missing, n/a for a failed figure, and the footer the spread
// of the per-round quotients of each column over the dialling one.
func TestRoundFigures(t *testing.T) {
	ts := []*target{{key: agDirect}, {key: agHop}, {key: agVia}}
	tab := newTable([]string{agDirect, agHop, agVia}, map[string]string{agDirect: "d", agHop: "h", agVia: "a"}, nil)
	f := newRoundFigures()
	for i, v := range []float64{100, 90, 110} {
		f.add("r", agDirect, v)
		f.add("r", agHop, []float64{95, 72, 99}[i])
		f.add("r", agVia, []float64{80, 85, 99}[i])
	}
	f.add("c", agDirect, 1)
	f.add("c", agHop, 2)
	f.fail("c", agVia, "broken")
	line := f.fill(tab, ts, []string{"r", "c"}, 4, []string{agHop, agVia}, agDirect, []string{"r"}, map[string]string{"r": "rate"})
	if c := tab.cells["r"][agDirect]; !c.ok || c.v != 100 || !strings.Contains(c.note, "3 of 4 rounds") {
		t.Errorf("direct: %+v", c)
	}
	if c := tab.cells["r"][agHop]; !c.ok || c.v != 95 {
		t.Errorf("hop: %+v", c)
	}
	if c := tab.cells["r"][agVia]; !c.ok || c.v != 85 {
		t.Errorf("agent: %+v", c)
	}
	if c := tab.cells["c"][agHop]; !c.ok || c.v != 2 {
		t.Errorf("hop figure: %+v", c)
	}
	if c := tab.cells["c"][agVia]; c.ok || c.note != "broken" {
		t.Errorf("failed figure: %+v", c)
	}
	// hop: 95/100, 72/90, 99/110: 0.95, 0.80, 0.90; agent: 80/100,
	// 85/90, 99/110: 0.80, 0.94, 0.90.
	if want := "Per-round quotients (lowest–highest): hop ÷ dial: rate 0.80–0.95×; agent ÷ dial: rate 0.80–0.94×."; line != want {
		t.Errorf("footer %q, want %q", line, want)
	}
}

// A column whose figure never came (n/a) leaves the footer to the others.
func TestRoundFiguresMissingColumn(t *testing.T) {
	ts := []*target{{key: agDirect}, {key: agHop, na: "no 127.0.0.2"}, {key: agVia}}
	tab := newTable([]string{agDirect, agHop, agVia}, map[string]string{agDirect: "d", agHop: "h", agVia: "a"}, nil)
	f := newRoundFigures()
	f.add("r", agDirect, 100)
	f.add("r", agVia, 70)
	line := f.fill(tab, ts, []string{"r"}, 1, []string{agHop, agVia}, agDirect, []string{"r"}, map[string]string{"r": "rate"})
	if c := tab.cells["r"][agHop]; c.ok || c.note != "no 127.0.0.2" {
		t.Errorf("hop: %+v", c)
	}
	if want := "Per-round quotients (lowest–highest): agent ÷ dial: rate 0.70–0.70×."; line != want {
		t.Errorf("footer %q, want %q", line, want)
	}
}

// Each round rotates the columns: each comes first in turn, and every
// round has all of them once.
func TestRoundOrder(t *testing.T) {
	ts := []*target{{key: agDirect}, {key: agHop}, {key: agVia}}
	want := [][]string{{agDirect, agHop, agVia}, {agHop, agVia, agDirect}, {agVia, agDirect, agHop}, {agDirect, agHop, agVia}}
	for round, w := range want {
		var got []string
		for _, t := range roundOrder(ts, round) {
			got = append(got, t.key)
		}
		if !slices.Equal(got, w) {
			t.Errorf("round %d: %v, want %v", round, got, w)
		}
	}
	if ts[0].key != agDirect {
		t.Errorf("roundOrder changed its argument")
	}
}
