package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// The measured targets, in the table's column order.
const (
	tDirect  = "direct"   // client -> vsftpd FTPS
	tGwPlain = "gw-plain" // client -> ftpsgate -> vsftpd plain
	tGwTLS   = "gw-ftps"  // client -> ftpsgate -> vsftpd FTPS
	tMpPlain = "mp-plain" // client -> mod_proxy -> vsftpd plain
	tMpTLS   = "mp-ftps"  // client -> mod_proxy -> vsftpd FTPS
)

var targetOrder = []string{tDirect, tGwPlain, tGwTLS, tMpPlain, tMpTLS}

var targetTitle = map[string]string{
	tDirect:  "direct vsftpd FTPS",
	tGwPlain: "ftpsgate FTPS→plain",
	tGwTLS:   "ftpsgate FTPS→FTPS",
	tMpPlain: "mod_proxy FTPS→plain",
	tMpTLS:   "mod_proxy FTPS→FTPS",
}

// ratios are the quotient columns: numerator target over denominator.
var ratios = []quotient{
	{tGwPlain, tDirect, "gw→plain ÷ direct", false},
	{tGwPlain, tMpPlain, "gw→plain ÷ mod_proxy→plain", false},
	{tGwTLS, tMpTLS, "gw→FTPS ÷ mod_proxy→FTPS", false},
}

// quotient is a derived column: num's figure over den's, or with diff
// num's minus den's (in the row's unit and precision).
type quotient struct {
	num, den, title string
	diff            bool
}

// metric is one row of the table.
type metric struct {
	id      string
	label   string // with its unit
	prec    int    // decimals
	higher  bool   // higher is better
	proxy   bool   // a figure of the proxy alone (its CPU): none for direct
	section string
}

// cell is one figure, or why there is none.
type cell struct {
	v    float64
	ok   bool
	note string // shown as a footnote; with ok, a caveat on the figure
}

// results collects the figures of a run. Safe for concurrent use.
type results struct {
	mu       sync.Mutex
	metrics  []metric
	cells    map[string]map[string]cell
	order    []string          // the columns, in order
	titles   map[string]string // their headings
	derived  []quotient        // the columns computed from two others
	noLegend bool              // leave out the ↑/↓ legend line (a second table)
	title    string            // a second table's heading
	footer   []string          // paragraphs printed under the table and its footnotes
}

// newResults is the main table: the targets and their ratios.
func newResults() *results {
	return newTable(targetOrder, targetTitle, ratios)
}

// newTable is a table with its own columns.
func newTable(order []string, titles map[string]string, derived []quotient) *results {
	return &results{cells: map[string]map[string]cell{}, order: order, titles: titles, derived: derived}
}

// define adds a row; rows print in the order defined.
func (r *results) define(m metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.metrics {
		if x.id == m.id {
			return
		}
	}
	r.metrics = append(r.metrics, m)
}

// has says whether the row id is defined.
func (r *results) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.metrics {
		if m.id == id {
			return true
		}
	}
	return false
}

func (r *results) set(id, target string, v float64, note string) {
	r.put(id, target, cell{v: v, ok: !math.IsNaN(v) && !math.IsInf(v, 0), note: note})
}

func (r *results) na(id, target, why string) {
	r.put(id, target, cell{note: why})
}

func (r *results) put(id, target string, c cell) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cells[id] == nil {
		r.cells[id] = map[string]cell{}
	}
	r.cells[id][target] = c
}

// missing marks every figure not yet measured for an available target.
func (r *results) missing(targets []*target, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.metrics {
		for _, t := range targets {
			if t.na != "" || m.proxy && t.key == tDirect {
				continue
			}
			if r.cells[m.id] == nil {
				r.cells[m.id] = map[string]cell{}
			}
			if _, ok := r.cells[m.id][t.key]; !ok {
				r.cells[m.id][t.key] = cell{note: why}
			}
		}
	}
}

// missingAll marks every figure not yet measured, in every column (a
// table without a direct column or unavailable targets).
func (r *results) missingAll(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.metrics {
		if r.cells[m.id] == nil {
			r.cells[m.id] = map[string]cell{}
		}
		for _, k := range r.order {
			if _, ok := r.cells[m.id][k]; !ok {
				r.cells[m.id][k] = cell{note: why}
			}
		}
	}
}

// empty says whether the table has no rows.
func (r *results) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.metrics) == 0
}

// markdown renders the table, its footnotes, and header lines.
func (r *results) markdown(w io.Writer, header []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	notes := []string{}
	noteIdx := map[string]int{}
	ref := func(n string) string {
		i, ok := noteIdx[n]
		if !ok {
			notes = append(notes, n)
			i = len(notes)
			noteIdx[n] = i
		}
		return "[" + strconv.Itoa(i) + "]"
	}
	for _, h := range header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	cols := []string{"figure"}
	for _, t := range r.order {
		cols = append(cols, r.titles[t])
	}
	for _, q := range r.derived {
		cols = append(cols, q.title)
	}
	fmt.Fprintln(w, "| "+strings.Join(cols, " | ")+" |")
	align := []string{"---"}
	for range cols[1:] {
		align = append(align, "---:")
	}
	fmt.Fprintln(w, "| "+strings.Join(align, " | ")+" |")
	section := ""
	for _, m := range r.metrics {
		if m.section != section {
			section = m.section
			row := []string{"**" + section + "**"}
			for range cols[1:] {
				row = append(row, "")
			}
			fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
		}
		arrow := "↓"
		if m.higher {
			arrow = "↑"
		}
		row := []string{m.label + " " + arrow}
		for _, t := range r.order {
			c, ok := r.cells[m.id][t]
			switch {
			case !ok:
				row = append(row, "—")
			case c.ok:
				s := strconv.FormatFloat(c.v, 'f', m.prec, 64)
				if c.note != "" {
					s += " " + ref(c.note)
				}
				row = append(row, s)
			default:
				row = append(row, "n/a "+ref(c.note))
			}
		}
		for _, q := range r.derived {
			a, okA := r.cells[m.id][q.num]
			b, okB := r.cells[m.id][q.den]
			switch {
			case !okA || !okB || !a.ok || !b.ok:
				row = append(row, "—")
			case q.diff:
				d := signedDiff(a.v-b.v, m.prec)
				row = append(row, d)
			case b.v != 0:
				row = append(row, fmt.Sprintf("%.2f×", a.v/b.v))
			default:
				row = append(row, "—")
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
	fmt.Fprintln(w)
	if !r.noLegend {
		fmt.Fprintln(w, "↑ higher is better, ↓ lower is better; — not applicable or not measured. MB = 10⁶ bytes, MiB/GiB = 2²⁰/2³⁰ bytes.")
	}
	if len(notes) > 0 {
		if !r.noLegend {
			fmt.Fprintln(w)
		}
		for i, n := range notes {
			fmt.Fprintf(w, "- [%d] %s\n", i+1, n)
		}
	}
	for i, f := range r.footer {
		if i > 0 || len(notes) > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, f)
	}
}

// signedDiff formats a difference with its sign, "+" or "−" (U+2212), and
// none when it rounds to zero at prec decimals.
func signedDiff(d float64, prec int) string {
	s := strconv.FormatFloat(math.Abs(d), 'f', prec, 64)
	if strings.Trim(s, "0.") == "" {
		return s
	}
	if d < 0 {
		return "−" + s
	}
	return "+" + s
}
