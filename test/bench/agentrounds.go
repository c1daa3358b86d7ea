package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The agent phase measures in rounds: in each, every figure for all
// columns back to back (the order rotated each round, so that none is
// always first), so that all see the same load; the table shows each figure's median over the
// rounds, and the footer the spread of the per-round quotients. On a
// shared machine a round's figures move with the neighbours' load; the
// median of several short rounds moves much less than one long sum.

// roundFigures collects, per figure id and column, one value per round.
type roundFigures struct {
	vals  map[string]map[string][]float64
	notes map[string]map[string]string
}

func newRoundFigures() *roundFigures {
	return &roundFigures{vals: map[string]map[string][]float64{}, notes: map[string]map[string]string{}}
}

func (f *roundFigures) add(id, key string, v float64) {
	if f.vals[id] == nil {
		f.vals[id] = map[string][]float64{}
	}
	f.vals[id][key] = append(f.vals[id][key], v)
}

func (f *roundFigures) fail(id, key, why string) {
	if f.notes[id] == nil {
		f.notes[id] = map[string]string{}
	}
	f.notes[id][key] = why
}

// median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// fill puts each figure's median into tab (with a note when fewer rounds
// than planned ran) and returns the footer line of the per-round
// quotients num ÷ den of the ids in spread, for each of nums.
func (f *roundFigures) fill(tab *results, ts []*target, ids []string, rounds int, nums []string, den string, spread []string, labels map[string]string) string {
	for _, id := range ids {
		for _, t := range ts {
			if t.na != "" {
				tab.na(id, t.key, t.na)
				continue
			}
			if why := f.notes[id][t.key]; why != "" {
				tab.na(id, t.key, why)
				continue
			}
			vs := f.vals[id][t.key]
			if len(vs) == 0 {
				continue // the phase ran out: marked by the caller
			}
			note := ""
			if len(vs) < rounds {
				note = fmt.Sprintf("median of %d of %d rounds: the rest ran out of time", len(vs), rounds)
			}
			tab.set(id, t.key, median(vs), note)
		}
	}
	var lines []string
	for _, num := range nums {
		var parts []string
		for _, id := range spread {
			a, b := f.vals[id][num], f.vals[id][den]
			n := min(len(a), len(b))
			if n == 0 {
				continue
			}
			qs := make([]float64, n)
			for i := range n {
				qs[i] = a[i] / b[i]
			}
			parts = append(parts, fmt.Sprintf("%s %.2f–%.2f×", labels[id], slices.Min(qs), slices.Max(qs)))
		}
		if len(parts) > 0 {
			lines = append(lines, num+" ÷ "+den+": "+strings.Join(parts, ", "))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "Per-round quotients (lowest–highest): " + strings.Join(lines, "; ") + "."
}

// roundOrder is the order of the columns in round: ts rotated by round,
// so that each comes first in turn.
func roundOrder(ts []*target, round int) []*target {
	if len(ts) == 0 {
		return nil
	}
	k := round % len(ts)
	return append(slices.Clone(ts[k:]), ts[:k]...)
}

// agentRound measures one round: sessions one at a time and par in
// parallel for agentFor each, then a curl download and upload, through
// each target in order. A target's side CPU (the agent's, the relay's)
// goes to the row of agentSideRow. relayed (nil: no hop column) is what
// the hop relay has carried: a hop figure whose data did not cross it
// fails.
func agentRound(ctx context.Context, e *env, f *roundFigures, ts []*target, round int, relayed func() hopCount) {
	order := roundOrder(ts, round)
	for _, par := range []int{1, 8} {
		p := fmt.Sprintf("agent/sess/%d/", par)
		for _, t := range order {
			if t.na != "" || ctx.Err() != nil || f.notes[p+"rate"][t.key] != "" {
				continue
			}
			var lastErr atomic.Value // string: the workers run at once
			one := func(ctx context.Context) (time.Duration, error) {
				d, err := oneSession(ctx, e, t.addr)
				if err != nil {
					lastErr.Store(oneLine(err))
				}
				return d, err
			}
			var c0 hopCount
			if t.key == agHop && relayed != nil {
				c0 = relayed()
			}
			lat, failed, wall, cpu, cpuErr := runWorkload(ctx, t, par, e.agentFor, e.loginsMax, one)
			if ctx.Err() != nil {
				return // cut by the budget: this round's figure is not counted
			}
			if failed > 0 || len(lat) == 0 {
				why, _ := lastErr.Load().(string)
				f.fail(p+"rate", t.key, fmt.Sprintf("%d in parallel: %d of %d sessions failed (%s)", par, failed, failed+len(lat), why))
				continue
			}
			if t.key == agHop && relayed != nil {
				// Each session's LIST opens one data connection.
				if c, ok := waitRelayed(relayed, func(c hopCount) bool { return c.dataConns-c0.dataConns >= len(lat) }); !ok {
					why := fmt.Sprintf("the data did not cross the hop relay: %d data connections through it for %d sessions", c.dataConns-c0.dataConns, len(lat))
					logf("agent: %s", why)
					f.fail(p+"rate", t.key, why)
					f.fail(p+"p50", t.key, why)
					f.fail(p+"cpu", t.key, why)
					continue
				}
			}
			f.add(p+"rate", t.key, float64(len(lat))/wall.Seconds())
			f.add(p+"p50", t.key, ms(percentile(lat, 50)))
			if cpuErr != nil {
				f.fail(p+"cpu", t.key, "CPU not readable: "+oneLine(cpuErr))
			} else {
				f.add(p+"cpu", t.key, ms(cpu)/float64(len(lat)))
			}
			logf("agent: round %d: %-5s x%d: %d sessions in %s (%.1f/s), CPU %.2f ms each",
				round+1, t.key, par, len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(), ms(cpu)/float64(len(lat)))
		}
	}
	gib := float64(e.bigSize) / (1 << 30)
	for _, dir := range []string{"download", "upload"} {
		id := "agent/" + dir + "/"
		for _, t := range order {
			if t.na != "" || ctx.Err() != nil || f.notes[id+"mbps"][t.key] != "" {
				continue
			}
			var a0 time.Duration
			var aErr error
			if t.side != nil {
				a0, aErr = t.side()
			}
			var c0 hopCount
			if t.key == agHop && relayed != nil {
				c0 = relayed()
			}
			m0, mErr := machineBusy()
			wall, cpu, cpuErr, err := oneStream(ctx, e, t, "curl", dir, nil)
			m1, mErr1 := machineBusy()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				why := fmt.Sprintf("curl %s through the %s gateway failed: %s", dir, t.key, oneLine(err))
				logf("agent: %s", why)
				f.fail(id+"mbps", t.key, why)
				f.fail(id+"cpu", t.key, why)
				if row := agentSideRow[t.key]; row != "" {
					f.fail(id+row, t.key, why)
				}
				continue
			}
			if t.key == agHop && relayed != nil {
				if c, ok := waitRelayed(relayed, func(c hopCount) bool { return c.dataBytes-c0.dataBytes >= e.bigSize }); !ok {
					why := fmt.Sprintf("the data did not cross the hop relay: %d bytes through its passive ports for a %s %s", c.dataBytes-c0.dataBytes, human(e.bigSize), dir)
					logf("agent: %s", why)
					f.fail(id+"mbps", t.key, why)
					f.fail(id+"cpu", t.key, why)
					f.fail(id+"hopcpu", t.key, why)
					continue
				}
			}
			f.add(id+"mbps", t.key, mbps(e.bigSize, wall))
			if cpuErr != nil {
				f.fail(id+"cpu", t.key, "CPU not readable: "+oneLine(cpuErr))
				continue
			}
			f.add(id+"cpu", t.key, cpu.Seconds()/gib)
			if mErr == nil && mErr1 == nil {
				f.add(id+"machcpu", t.key, (m1-m0).Seconds()/gib)
			}
			line := fmt.Sprintf("agent: round %d: %-5s curl %-8s %6.0f MB/s, CPU %.2f s/GiB", round+1, t.key, dir, mbps(e.bigSize, wall), cpu.Seconds()/gib)
			if t.side != nil && aErr == nil {
				if a1, err := t.side(); err == nil {
					f.add(id+agentSideRow[t.key], t.key, (a1-a0).Seconds()/gib)
					line += fmt.Sprintf(" (%s %.2f)", t.key, (a1-a0).Seconds()/gib)
				}
			}
			logf("%s", line)
		}
	}
}
