package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// defineMetrics declares the table's rows in order.
func defineMetrics(e *env) {
	r := e.res
	sec := fmt.Sprintf("single stream, %s file (curl, lftp; wall time of the client process)", human(e.bigSize))
	for _, c := range []string{"curl", "lftp"} {
		for _, d := range []string{"download", "upload"} {
			r.define(metric{id: "stream/" + c + "/" + d + "/mbps", label: c + " " + d + ", MB/s", prec: 0, higher: true, section: sec})
			r.define(metric{id: "stream/" + c + "/" + d + "/cpu", label: c + " " + d + ", proxy CPU s/GiB", prec: 2, proxy: true, section: sec})
		}
	}
	sec = "sessions: AUTH TLS, USER, PASS, PBSZ, PROT P, EPSV, LIST, QUIT (Go client)"
	for _, par := range []int{1, 8} {
		what := "one at a time"
		if par > 1 {
			what = fmt.Sprintf("%d in parallel", par)
		}
		p := fmt.Sprintf("sess/%d/", par)
		r.define(metric{id: p + "rate", label: what + ": sessions/s", prec: 1, higher: true, section: sec})
		r.define(metric{id: p + "p50", label: what + ": latency p50, ms", prec: 1, section: sec})
		r.define(metric{id: p + "p99", label: what + ": latency p99, ms", prec: 1, section: sec})
		r.define(metric{id: p + "cpu", label: what + ": proxy CPU ms/session", prec: 2, proxy: true, section: sec})
	}
	sec = "idle logged-in TLS sessions (memory of the serving processes ÷ sessions)"
	for _, n := range e.idleCounts {
		r.define(metric{id: fmt.Sprintf("idle/%d", n), label: fmt.Sprintf("%d sessions: KiB/session", n), prec: 1, section: sec})
	}
	if e.idleStub > 0 {
		r.define(metric{id: "idle/stub", label: fmt.Sprintf("%d sessions, stub backend: KiB/session", e.idleStub), prec: 1, section: sec})
	}
	sec = fmt.Sprintf("%d concurrent downloads of %s (Go client, sessions logged in first, SHA-256 checked)", e.concurrent, human(e.concSize))
	r.define(metric{id: "conc/mbps", label: "aggregate MB/s", prec: 0, higher: true, section: sec})
	r.define(metric{id: "conc/ttfb50", label: "time to first byte (from EPSV) p50, ms", prec: 0, section: sec})
	r.define(metric{id: "conc/ttfb99", label: "time to first byte (from EPSV) p99, ms", prec: 0, section: sec})
	r.define(metric{id: "conc/ok", label: fmt.Sprintf("verified transfers (of %d)", e.concurrent), prec: 0, higher: true, section: sec})
	r.define(metric{id: "conc/cpu", label: "proxy CPU s/GiB", prec: 2, proxy: true, section: sec})
}

// oneSession runs the sessions/s workload once: AUTH TLS, USER, PASS,
// PBSZ 0, PROT P, EPSV, LIST, QUIT; it returns how long it took.
func oneSession(ctx context.Context, e *env, addr string) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := dialFTPS(ctx, addr, e.clientTLS)
	if err != nil {
		return 0, err
	}
	if err := c.login(e.acct); err != nil {
		c.close()
		return 0, err
	}
	if _, err := c.transfer(ctx, "LIST", "", io.Discard, nil); err != nil {
		c.close()
		return 0, err
	}
	if err := c.quit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// phaseSessions measures sessions per second, one at a time and 8 in
// parallel. Each figure is taken over several rounds that go through the
// targets in turn (direct, gateway, ..., direct, gateway, ...), so that a
// slow spell of this shared machine weighs on every target alike, not on
// whichever ran during it.
func phaseSessions(ctx context.Context, e *env, targets []*target) {
	type acc struct {
		lat       []time.Duration
		failed    int
		wall, cpu time.Duration
		cpuErr    error
	}
	for _, par := range []int{1, 8} {
		p := fmt.Sprintf("sess/%d/", par)
		accs := make(map[string]*acc)
		for round := range e.sessionRounds {
			for _, t := range targets {
				if t.na != "" || ctx.Err() != nil {
					continue
				}
				a := accs[t.key]
				if a == nil {
					a = &acc{}
					accs[t.key] = a
				}
				lat, failed, wall, cpu, cpuErr := runSessions(ctx, e, t, par)
				a.lat = append(a.lat, lat...)
				a.failed += failed
				a.wall += wall
				a.cpu += cpu
				if cpuErr != nil {
					a.cpuErr = cpuErr
				}
				logf("sessions %-9s x%d round %d: %d sessions in %s (%.1f/s), %d failed",
					t.key, par, round+1, len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(), failed)
			}
		}
		for _, t := range targets {
			if t.na != "" {
				for _, m := range []string{"rate", "p50", "p99", "cpu"} {
					e.res.na(p+m, t.key, t.na)
				}
				continue
			}
			a := accs[t.key]
			if a == nil {
				continue // the phase ran out: reported as not measured
			}
			note := ""
			if a.failed > 0 {
				note = fmt.Sprintf("%s, %d in parallel: %d sessions failed (%s)", targetTitle[t.key], par, a.failed, lastSessionErr.Load())
			}
			n := len(a.lat)
			if n == 0 {
				for _, m := range []string{"rate", "p50", "p99", "cpu"} {
					e.res.na(p+m, t.key, note)
				}
				continue
			}
			e.res.set(p+"rate", t.key, float64(n)/a.wall.Seconds(), note)
			e.res.set(p+"p50", t.key, ms(percentile(a.lat, 50)), "")
			e.res.set(p+"p99", t.key, ms(percentile(a.lat, 99)), "")
			switch {
			case t.cpu == nil:
			case a.cpuErr != nil:
				e.res.na(p+"cpu", t.key, "CPU not readable: "+oneLine(a.cpuErr))
			default:
				e.res.set(p+"cpu", t.key, ms(a.cpu)/float64(n), "")
			}
			logf("sessions %-9s x%d: %d sessions in %s (%.1f/s), p50 %.1f ms, p99 %.1f ms, %d failed",
				t.key, par, n, a.wall.Round(time.Millisecond), float64(n)/a.wall.Seconds(),
				ms(percentile(a.lat, 50)), ms(percentile(a.lat, 99)), a.failed)
		}
	}
}

var lastSessionErr atomic.Value // string

// runSessions runs par workers that each repeat oneSession until the time
// or the count is up.
func runSessions(ctx context.Context, e *env, t *target, par int) (lat []time.Duration, failed int, wall, cpu time.Duration, cpuErr error) {
	return runWorkload(ctx, t, par, e.sessionsFor, e.sessionsMax, func(ctx context.Context) (time.Duration, error) { return oneSession(ctx, e, t.addr) })
}

// runWorkload runs par workers that each repeat one until dur has passed
// or maxN have started, and reads t's CPU before and after.
func runWorkload(ctx context.Context, t *target, par int, dur time.Duration, maxN int, one func(context.Context) (time.Duration, error)) (lat []time.Duration, failed int, wall, cpu time.Duration, cpuErr error) {
	ctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	settle()
	var cpu0 time.Duration
	if t.cpu != nil {
		cpu0, cpuErr = t.cpu()
	}
	var (
		mu      sync.Mutex
		started atomic.Int64
		nfail   atomic.Int64
		wg      sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(dur)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && started.Add(1) <= int64(maxN) && ctx.Err() == nil {
				d, err := one(ctx)
				if err != nil {
					nfail.Add(1)
					lastSessionErr.Store(oneLine(err))
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wall = time.Since(start)
	settle()
	if t.cpu != nil && cpuErr == nil {
		var cpu1 time.Duration
		cpu1, cpuErr = t.cpu()
		cpu = cpu1 - cpu0
	}
	return lat, int(nfail.Load()), wall, cpu, cpuErr
}

// settle lets the servers finish what a measurement left (session
// teardown, reaping of session processes) before CPU is read.
func settle() { time.Sleep(settleTime) }

// settleTime is settle's pause (a phase with many short measurements
// shortens it).
var settleTime = 300 * time.Millisecond
