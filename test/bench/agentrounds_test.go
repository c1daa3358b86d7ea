package main

import (
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
// of the per-round quotients.
func TestRoundFigures(t *testing.T) {
	ts := []*target{{key: agDirect}, {key: agVia}}
	tab := newTable([]string{agDirect, agVia}, map[string]string{agDirect: "d", agVia: "a"}, nil)
	f := newRoundFigures()
	for i, v := range []float64{100, 90, 110} {
		f.add("r", agDirect, v)
		f.add("r", agVia, []float64{80, 85, 99}[i])
	}
	f.add("c", agDirect, 1)
	f.fail("c", agVia, "broken")
	line := f.fill(tab, ts, []string{"r", "c"}, 4, agVia, agDirect, []string{"r"}, map[string]string{"r": "rate"})
	if c := tab.cells["r"][agDirect]; !c.ok || c.v != 100 || !strings.Contains(c.note, "3 of 4 rounds") {
		t.Errorf("direct: %+v", c)
	}
	if c := tab.cells["r"][agVia]; !c.ok || c.v != 85 {
		t.Errorf("agent: %+v", c)
	}
	if c := tab.cells["c"][agVia]; c.ok || c.note != "broken" {
		t.Errorf("failed figure: %+v", c)
	}
	// 80/100, 85/90, 99/110: 0.80, 0.94, 0.90.
	if want := "rate 0.80–0.94×"; !strings.Contains(line, want) {
		t.Errorf("footer %q, want %q in it", line, want)
	}
}
