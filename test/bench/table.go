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
var ratios = []struct{ num, den, title string }{
	{tGwPlain, tDirect, "gw→plain ÷ direct"},
	{tGwPlain, tMpPlain, "gw→plain ÷ mod_proxy→plain"},
	{tGwTLS, tMpTLS, "gw→FTPS ÷ mod_proxy→FTPS"},
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
	mu      sync.Mutex
	metrics []metric
	cells   map[string]map[string]cell
}

func newResults() *results {
	return &results{cells: map[string]map[string]cell{}}
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
	for _, t := range targetOrder {
		cols = append(cols, targetTitle[t])
	}
	for _, q := range ratios {
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
		for _, t := range targetOrder {
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
		for _, q := range ratios {
			a, okA := r.cells[m.id][q.num]
			b, okB := r.cells[m.id][q.den]
			if okA && okB && a.ok && b.ok && b.v != 0 {
				row = append(row, fmt.Sprintf("%.2f×", a.v/b.v))
			} else {
				row = append(row, "—")
			}
		}
		fmt.Fprintln(w, "| "+strings.Join(row, " | ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "↑ higher is better, ↓ lower is better; — not applicable or not measured. MB = 10⁶ bytes, MiB/GiB = 2²⁰/2³⁰ bytes.")
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for i, n := range notes {
			fmt.Fprintf(w, "- [%d] %s\n", i+1, n)
		}
	}
}
