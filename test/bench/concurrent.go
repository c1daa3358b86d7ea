package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// phaseConcurrent logs in e.concurrent sessions (e.openParallel at a
// time: vsftpd resets connections that arrive 200 at once), then starts
// one download of the same e.concSize file on every session at the same
// instant, hashing each as it arrives: aggregate throughput (verified bytes
// over the wall time from that instant to the last transfer's end), time to
// first byte (from the session's EPSV to its first data byte, with all the
// others in flight), and the proxy's CPU per GiB over the transfers.
func phaseConcurrent(ctx context.Context, e *env, targets []*target) {
	for _, t := range targets {
		ids := []string{"conc/mbps", "conc/ttfb50", "conc/ttfb99", "conc/ok", "conc/cpu"}
		if t.na != "" {
			for _, id := range ids {
				e.res.na(id, t.key, t.na)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		r := concurrentDownloads(ctx, e, t)
		note := ""
		if r.ok < e.concurrent {
			note = fmt.Sprintf("%s: %d of %d sessions failed to log in, %d transfers failed or did not verify (%v)",
				targetTitle[t.key], r.loginFailed, e.concurrent, e.concurrent-r.loginFailed-r.ok, r.lastErr)
		}
		e.res.set("conc/ok", t.key, float64(r.ok), note)
		if r.ok == 0 {
			for _, id := range ids[:3] {
				e.res.na(id, t.key, note)
			}
			continue
		}
		bytes := int64(r.ok) * e.concSize
		e.res.set("conc/mbps", t.key, mbps(bytes, r.wall), "")
		e.res.set("conc/ttfb50", t.key, ms(percentile(r.ttfb, 50)), "")
		e.res.set("conc/ttfb99", t.key, ms(percentile(r.ttfb, 99)), "")
		switch {
		case t.cpu == nil:
		case r.cpuErr != nil:
			e.res.na("conc/cpu", t.key, "CPU not readable: "+oneLine(r.cpuErr))
		default:
			e.res.set("conc/cpu", t.key, r.cpu.Seconds()/(float64(bytes)/(1<<30)), "")
		}
		logf("concurrent %-9s %d ok of %d, %.0f MB/s, ttfb p50 %.0f ms p99 %.0f ms", t.key, r.ok, e.concurrent,
			mbps(bytes, r.wall), ms(percentile(r.ttfb, 50)), ms(percentile(r.ttfb, 99)))
	}
}

type concResult struct {
	ttfb        []time.Duration
	ok          int
	loginFailed int
	wall, cpu   time.Duration
	cpuErr      error
	lastErr     error
}

func concurrentDownloads(ctx context.Context, e *env, t *target) (r concResult) {
	ctx, cancel := context.WithTimeout(ctx, e.concLimit)
	defer cancel()
	conns, failed, lastErr := openIdle(ctx, e, t.addr, e.concurrent, e.concLimit/2)
	r.loginFailed, r.lastErr = failed, lastErr
	defer closeAll(conns, 0)
	settle()
	var cpu0 time.Duration
	if t.cpu != nil {
		cpu0, r.cpuErr = t.cpu()
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	gate := make(chan struct{})
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if dl, ok := ctx.Deadline(); ok {
				_ = c.raw.SetDeadline(dl)
			}
			<-gate
			d, err := download(ctx, e, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				r.lastErr = err
				return
			}
			r.ok++
			r.ttfb = append(r.ttfb, d)
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	r.wall = time.Since(start)
	settle()
	if t.cpu != nil && r.cpuErr == nil {
		var cpu1 time.Duration
		cpu1, r.cpuErr = t.cpu()
		r.cpu = cpu1 - cpu0
	}
	return r
}

// download fetches e.concName on a logged-in session and checks its
// SHA-256; it returns the time from EPSV to the first data byte.
func download(ctx context.Context, e *env, c *ftpsConn) (time.Duration, error) {
	if _, err := c.cmd(ftp.StatusCommandOK, "TYPE", "I"); err != nil {
		return 0, err
	}
	start := time.Now()
	var first time.Duration
	h := sha256.New()
	n, err := c.transfer(ctx, "RETR", e.concName, h, func() { first = time.Since(start) })
	if err != nil {
		return 0, err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != e.concSize || sum != e.concSum {
		return 0, fmt.Errorf("received %d bytes with SHA-256 %s, want %d bytes, %s", n, sum, e.concSize, e.concSum)
	}
	return first, nil
}
