package main

import (
	"bytes"
	"testing"
)

// The main table renders as before the second tables came: ratio columns,
// footnotes, legend.
func TestMainTableMarkdown(t *testing.T) {
	r := newResults()
	r.define(metric{id: "a", label: "rate", prec: 1, higher: true, section: "sec"})
	r.define(metric{id: "b", label: "cpu", prec: 2, proxy: true, section: "sec"})
	r.set("a", tDirect, 10, "")
	r.set("a", tGwPlain, 15, "caveat")
	r.na("a", tMpPlain, "broken")
	r.set("b", tGwPlain, 1.5, "")
	r.set("b", tMpPlain, 3, "")
	var buf bytes.Buffer
	r.markdown(&buf, []string{"# head"})
	want := `# head

| figure | direct vsftpd FTPS | ftpsgate FTPS→plain | ftpsgate FTPS→FTPS | mod_proxy FTPS→plain | mod_proxy FTPS→FTPS | gw→plain ÷ direct | gw→plain ÷ mod_proxy→plain | gw→FTPS ÷ mod_proxy→FTPS |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| **sec** |  |  |  |  |  |  |  |  |
| rate ↑ | 10.0 | 15.0 [1] | — | n/a [2] | — | 1.50× | — | — |
| cpu ↓ | — | 1.50 | — | 3.00 | — | — | 0.50× | — |

↑ higher is better, ↓ lower is better; — not applicable or not measured. MB = 10⁶ bytes, MiB/GiB = 2²⁰/2³⁰ bytes.

- [1] caveat
- [2] broken
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A second table: its own columns, a difference column with its sign, no
// legend, and missingAll filling what was not measured.
func TestSecondTableMarkdown(t *testing.T) {
	r := newTable([]string{"x", "y"}, map[string]string{"x": "X", "y": "Y"},
		[]quotient{{"y", "x", "y − x", true}, {"y", "x", "y ÷ x", false}})
	r.noLegend = true
	r.define(metric{id: "a", label: "cpu", prec: 2, section: "sec"})
	r.define(metric{id: "b", label: "rate", prec: 0, higher: true, section: "sec"})
	r.set("a", "x", 0.5, "")
	r.set("a", "y", 1.25, "")
	r.set("b", "x", 300, "")
	r.missingAll("ran out")
	var buf bytes.Buffer
	r.markdown(&buf, []string{"### t"})
	want := `### t

| figure | X | Y | y − x | y ÷ x |
| --- | ---: | ---: | ---: | ---: |
| **sec** |  |  |  |  |
| cpu ↓ | 0.50 | 1.25 | +0.75 | 2.50× |
| rate ↑ | 300 | n/a [1] | — | — |

- [1] ran out
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A difference has its sign, and none when it rounds to zero: a -0.001
// of a row in whole units is "0", not "-0".
func TestSignedDiff(t *testing.T) {
	for _, c := range []struct {
		d    float64
		prec int
		want string
	}{
		{0.75, 2, "+0.75"},
		{-248, 0, "−248"},
		{-0.2, 0, "0"},
		{0.004, 2, "0.00"},
		{-0.006, 2, "−0.01"},
		{0, 1, "0.0"},
		{104.4, 0, "+104"},
	} {
		if got := signedDiff(c.d, c.prec); got != c.want {
			t.Errorf("signedDiff(%v, %d) = %q, want %q", c.d, c.prec, got, c.want)
		}
	}
}
