package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// The features phase measures what three settings cost, each against the
// same gateway without it, with gateways of its own in front of the plain
// vsftpd (FTPS→plain, the bench's YAML otherwise):
//
//   - transfers.hash: off, uploads (the default) and all, one gateway each;
//     a curl download and upload of the big file through each, gateway CPU
//     per GiB and MB/s;
//   - edge authentication: sessions that only log in (AUTH TLS, USER, PASS,
//     QUIT) through a gateway in passthrough mode (the backend decides) and
//     through one with auth.mode gateway and a local users file (an
//     argon2id hash, the user mapped to the bench's vsftpd account), both
//     fresh and with hash: uploads; logins/s and gateway CPU per login, one
//     at a time and 8 in parallel;
//   - the audit trail (audit.file, fsync per batch): full sessions (the
//     sessions phase's) and curl transfers through a gateway with it and
//     one without (auditcost.go), and afterwards a check that the audit
//     file verifies and holds a record of every transfer;
//   - content inspection: curl transfers through gateways with no
//     inspection, inspect.dlp, inspect.dlp with downloads held, and
//     inspect.icap against c-icap + ClamAV (inspectcost.go).

// hashSettings are the transfers.hash values, in column order.
var hashSettings = []string{"off", "uploads", "all"}

// featureBlocks are the passive ranges of the hash gateways, in the order
// of hashSettings, below the stub gateway's 62950-62999.
var featureBlocks = []portBlock{{62800, 62849}, {62850, 62899}, {62900, 62949}}

// edgeBlock is the passive range of the edge-auth gateway: the stub
// gateway's, which the idle phase has stopped by then (its logins open no
// data connection anyway). The passthrough gateway of the logins takes
// featureBlocks[1] once the hash gateways have stopped.
var edgeBlock = portBlock{62950, 62999}

// The login table's columns.
const (
	lPass = "passthrough"
	lEdge = "edge"
)

// edgeUser is the edge account in the users file; vsftpd does not know
// it, so a login under it that succeeds went through the edge check.
const edgeUser = "bench-edge"

func hashYAML(setting string) string {
	return fmt.Sprintf("transfers:\n  hash: %q\n", setting) // quoted: YAML 1.1 reads a bare off as false
}

// phaseFeatures fills the four feature tables (e.feat).
func phaseFeatures(ctx context.Context, e *env, _ []*target) {
	hashTab := newTable(hashSettings, map[string]string{
		"off": "hash: off", "uploads": "hash: uploads (default)", "all": "hash: all",
	}, []quotient{
		{"uploads", "off", "uploads − off", true},
		{"all", "off", "all − off", true},
	})
	loginTab := newTable([]string{lPass, lEdge}, map[string]string{
		lPass: "passthrough (backend decides)", lEdge: "edge, local users (argon2id)",
	}, []quotient{{lEdge, lPass, "edge ÷ passthrough", false}})
	hashTab.noLegend, loginTab.noLegend = true, true
	hashTab.title = "features: transfers.hash (three gateways alike but for the setting; the last two columns are differences, in the row's unit)"
	loginTab.title = "features: logins, edge authentication against passthrough"
	e.feat = append(e.feat, hashTab, loginTab)

	sec := fmt.Sprintf("transfers.hash: curl, %s file, FTPS→plain vsftpd, %s", human(e.bigSize), plural(e.featRounds, "round"))
	for _, d := range []string{"download", "upload"} {
		hashTab.define(metric{id: "hash/" + d + "/mbps", label: "curl " + d + ", MB/s", prec: 0, higher: true, section: sec})
		hashTab.define(metric{id: "hash/" + d + "/cpu", label: "curl " + d + ", gateway CPU s/GiB", prec: 2, section: sec})
	}
	sec = fmt.Sprintf("logins only: AUTH TLS, USER, PASS, QUIT (Go client), FTPS→plain vsftpd, %s of %s", plural(e.featRounds, "round"), e.loginsFor)
	for _, par := range []int{1, 8} {
		what := "one at a time"
		if par > 1 {
			what = fmt.Sprintf("%d in parallel", par)
		}
		p := fmt.Sprintf("login/%d/", par)
		loginTab.define(metric{id: p + "rate", label: what + ": logins/s", prec: 1, higher: true, section: sec})
		loginTab.define(metric{id: p + "p50", label: what + ": latency p50, ms", prec: 1, section: sec})
		loginTab.define(metric{id: p + "cpu", label: what + ": gateway CPU ms/login", prec: 2, section: sec})
	}

	auditTab := defineAuditTable(e)
	inspTab := defineInspectTable(e)

	if e.plainBackend == "" {
		why := "the plain vsftpd is not running (see the main table)"
		for _, t := range []*results{hashTab, loginTab, auditTab, inspTab} {
			t.missingAll(why)
		}
		return
	}

	// The hashing part gets a third of what is left, the logins a quarter
	// of what is left then, the audit trail half of the rest, inspection
	// the rest: slow transfers on a busy machine leave the later parts
	// their time.
	parts := []struct {
		n    int
		what string
		tab  *results
		fn   func(context.Context, *env, *results)
	}{
		{3, "the transfers.hash part", hashTab, measureHashGateways},
		{4, "the logins part", loginTab, measureLoginGateways},
		{2, "the audit part", auditTab, measureAuditGateways},
		{1, "the inspection part", inspTab, measureInspectGateways},
	}
	for _, p := range parts {
		pctx, cancel := share(ctx, p.n, p.what)
		p.fn(pctx, e, p.tab)
		if ctx.Err() == nil && pctx.Err() != nil {
			logf("features: %v: the rest of it is not measured", context.Cause(pctx))
			p.tab.missingAll("not measured: " + context.Cause(pctx).Error())
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
	}
}

// share is ctx cut to 1/n of the time its deadline leaves, for the part
// named what.
func share(ctx context.Context, n int, what string) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	part := time.Until(dl) / time.Duration(n)
	return context.WithTimeoutCause(ctx, part, fmt.Errorf("%s ran out of its %s", what, part.Round(time.Second)))
}

// measureHashGateways starts a gateway per transfers.hash setting, moves
// the big file through each, and stops them.
func measureHashGateways(ctx context.Context, e *env, hashTab *results) {
	gws := make([]*target, len(hashSettings))
	for i, h := range hashSettings {
		t := &target{key: h}
		gws[i] = t
		if err := checkBindable(featureBlocks[i]); err != nil {
			t.na = err.Error()
			continue
		}
		g, err := startGatewayWith(ctx, e, "ftpsgate-hash-"+h, e.plainBackend, "none", featureBlocks[i], hashYAML(h))
		if err != nil {
			t.na = "gateway did not start: " + oneLine(err)
			continue
		}
		defer g.proc.stop()
		t.addr, t.cpu = g.Addr, processCPU(g.proc.pid())
	}
	for _, t := range gws {
		if t.na != "" {
			logf("features: hash %s: n/a: %s", t.key, t.na)
		}
	}
	measureCurl(ctx, e, hashTab, gws, "hash", e.featRounds)
}

// measureLoginGateways starts the passthrough and the edge gateway, runs
// the logins through both, and stops them.
func measureLoginGateways(ctx context.Context, e *env, loginTab *results) {
	// Two fresh gateways, configured alike but for auth: a gateway that
	// has just moved gigabytes would still be returning that memory, and
	// its CPU would count against its logins.
	pass := &target{key: lPass}
	if err := checkBindable(featureBlocks[1]); err != nil {
		pass.na = err.Error()
	} else if g, err := startGatewayWith(ctx, e, "ftpsgate-passthrough", e.plainBackend, "none", featureBlocks[1], hashYAML("uploads")); err != nil {
		pass.na = "gateway did not start: " + oneLine(err)
	} else {
		defer g.proc.stop()
		pass.addr, pass.cpu = g.Addr, processCPU(g.proc.pid())
	}
	edge, edgeAcct, g := startEdge(ctx, e)
	if g != nil {
		defer g.proc.stop()
	}
	ts, accts := []*target{pass, edge}, []account{e.acct, edgeAcct}
	login := func(ctx context.Context, i int) (time.Duration, error) { return oneLogin(ctx, e, ts[i].addr, accts[i]) }
	smoke(ctx, ts, "login", login)
	measureRates(ctx, e, loginTab, ts, []int{1, 8}, "login", "logins", login)
}

// tally counts what a measurement tried and what succeeded, per target
// (and direction).
type tally struct{ tried, ok int }

// measureCurl runs a curl download and upload through each gateway of a
// group ("hash", "audit", "insp": the prefix of its rows, and of its log
// lines), rounds times (the order reversed every other round), and fills
// tab: GROUP/DIRECTION/mbps and cpu, and where tab defines them ttfb
// (downloads: curl's time to the first byte, ms) and side (the CPU of the
// target's side processes, s/GiB). It returns the transfers tried and done
// per "KEY/DIRECTION".
func measureCurl(ctx context.Context, e *env, tab *results, gws []*target, group string, rounds int) map[string]tally {
	type acc struct {
		wall, cpu, ttfb, side time.Duration
		n, tried              int
		cpuErr, sideErr       error
		err                   string
	}
	accs := map[string]*acc{}
rounds:
	for round := range rounds {
		order := gws
		if round%2 == 1 {
			order = make([]*target, len(gws))
			for i, t := range gws {
				order[len(gws)-1-i] = t
			}
		}
		for _, dir := range []string{"download", "upload"} {
			for _, t := range order {
				if t.na != "" {
					continue
				}
				if ctx.Err() != nil {
					break rounds
				}
				k := t.key + "/" + dir
				a := accs[k]
				if a == nil {
					a = &acc{}
					accs[k] = a
				}
				if a.err != "" {
					continue
				}
				a.tried++
				var side0 time.Duration
				var sideErr error
				if t.side != nil {
					side0, sideErr = t.side()
				}
				r, err := oneStreamTimed(ctx, e, t, "curl", dir, nil)
				wall, cpu := r.wall, r.cpu
				if err != nil && ctx.Err() != nil {
					break rounds // cut by the budget, not a failure
				}
				if err != nil {
					a.err = fmt.Sprintf("curl %s via the %s %s gateway failed: %s", dir, group, t.key, oneLine(err))
					logf("features: %s", a.err)
					continue
				}
				var side time.Duration
				if t.side != nil && sideErr == nil {
					var side1 time.Duration
					side1, sideErr = t.side()
					side = side1 - side0
				}
				a.wall += wall
				a.cpu += cpu
				a.ttfb += r.ttfb
				a.side += side
				a.n++
				if r.cpuErr != nil {
					a.cpuErr = r.cpuErr
				}
				if sideErr != nil {
					a.sideErr = sideErr
				}
				gib := float64(e.bigSize) / (1 << 30)
				extra := ""
				if dir == "download" {
					extra += fmt.Sprintf("  first byte after %d ms", r.ttfb.Milliseconds())
				}
				if t.side != nil {
					extra += fmt.Sprintf("  scanner CPU %.2f s/GiB", side.Seconds()/gib)
				}
				logf("features: %s %-7s curl %-8s round %d: %6.0f MB/s  gateway CPU %.2f s/GiB%s",
					group, t.key, dir, round+1, mbps(e.bigSize, wall), cpu.Seconds()/gib, extra)
			}
		}
	}
	counts := map[string]tally{}
	for k, a := range accs {
		counts[k] = tally{tried: a.tried, ok: a.n}
	}
	for _, t := range gws {
		for _, dir := range []string{"download", "upload"} {
			id := group + "/" + dir + "/"
			a := accs[t.key+"/"+dir]
			switch {
			case t.na != "":
				tab.na(id+"mbps", t.key, t.na)
				tab.na(id+"cpu", t.key, t.na)
				continue
			case a == nil || a.n == 0 && a.err == "":
				continue // the phase ran out: marked by the caller
			case a.err != "":
				tab.na(id+"mbps", t.key, a.err)
				tab.na(id+"cpu", t.key, a.err)
				continue
			}
			note := ""
			if a.n < rounds {
				note = fmt.Sprintf("%d of %d rounds: the rest ran out of time", a.n, rounds)
			}
			moved := e.bigSize * int64(a.n)
			gib := float64(moved) / (1 << 30)
			tab.set(id+"mbps", t.key, mbps(moved, a.wall), note)
			if a.cpuErr != nil {
				tab.na(id+"cpu", t.key, "CPU not readable: "+oneLine(a.cpuErr))
			} else {
				tab.set(id+"cpu", t.key, a.cpu.Seconds()/gib, note)
			}
			if dir == "download" && tab.has(id+"ttfb") {
				tab.set(id+"ttfb", t.key, ms(a.ttfb)/float64(a.n), note)
			}
			switch {
			case t.side == nil || !tab.has(id+"side"):
			case a.sideErr != nil:
				tab.na(id+"side", t.key, "CPU not readable: "+oneLine(a.sideErr))
			default:
				tab.set(id+"side", t.key, a.side.Seconds()/gib, note)
			}
		}
	}
	return counts
}

// smoke runs one of each target once (what: for the log line); a target
// that fails it is n/a.
func smoke(ctx context.Context, ts []*target, what string, one func(context.Context, int) (time.Duration, error)) {
	for i, t := range ts {
		if t.na != "" {
			continue
		}
		if _, err := one(ctx, i); err != nil {
			t.na = "smoke " + what + " failed: " + oneLine(err)
			logf("features: %s: n/a: %s", t.key, t.na)
		}
	}
}

// measureRates runs one (given the target's index) with each of pars
// workers (1: one at a time), in rounds that alternate the targets (as the
// sessions phase does), and fills the rows id/PAR/ (rate, p50, cpu) of
// tab; noun names what one does in the log ("logins", "sessions"). It
// returns how many were tried and how many succeeded per target.
func measureRates(ctx context.Context, e *env, tab *results, ts []*target, pars []int, id, noun string, one func(context.Context, int) (time.Duration, error)) map[string]tally {
	type acc struct {
		lat       []time.Duration
		failed    int
		wall, cpu time.Duration
		cpuErr    error
		lastErr   string
	}
	counts := map[string]tally{}
	for _, par := range pars {
		p := fmt.Sprintf("%s/%d/", id, par)
		accs := map[string]*acc{}
		for round := range e.featRounds {
			for i, t := range ts {
				if t.na != "" || ctx.Err() != nil {
					continue
				}
				a := accs[t.key]
				if a == nil {
					a = &acc{}
					accs[t.key] = a
				}
				var lastErr atomic.Value // string
				run := func(ctx context.Context) (time.Duration, error) {
					d, err := one(ctx, i)
					if err != nil {
						lastErr.Store(oneLine(err))
					}
					return d, err
				}
				lat, failed, wall, cpu, cpuErr := runWorkload(ctx, t, par, e.loginsFor, e.loginsMax, run)
				c := counts[t.key]
				c.tried += len(lat) + failed
				c.ok += len(lat)
				counts[t.key] = c
				if ctx.Err() != nil && len(lat) == 0 {
					continue // cut by the budget: marked by the caller
				}
				a.lat = append(a.lat, lat...)
				a.failed += failed
				a.wall += wall
				a.cpu += cpu
				if cpuErr != nil {
					a.cpuErr = cpuErr
				}
				if s, ok := lastErr.Load().(string); ok {
					a.lastErr = s
				}
				logf("features: %s %-11s x%d round %d: %d in %s (%.1f/s), gateway CPU %.2f ms each, %d failed",
					noun, t.key, par, round+1, len(lat), wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(),
					ms(cpu)/float64(max(len(lat), 1)), failed)
			}
		}
		for _, t := range ts {
			if t.na != "" {
				for _, m := range []string{"rate", "p50", "cpu"} {
					tab.na(p+m, t.key, t.na)
				}
				continue
			}
			a := accs[t.key]
			if a == nil {
				continue // the phase ran out: marked by the caller
			}
			note := ""
			if a.failed > 0 {
				note = fmt.Sprintf("%s, %d in parallel: %d %s failed (%s)", t.key, par, a.failed, noun, a.lastErr)
			}
			n := len(a.lat)
			if n == 0 {
				for _, m := range []string{"rate", "p50", "cpu"} {
					tab.na(p+m, t.key, note)
				}
				continue
			}
			tab.set(p+"rate", t.key, float64(n)/a.wall.Seconds(), note)
			tab.set(p+"p50", t.key, ms(percentile(a.lat, 50)), "")
			if a.cpuErr != nil {
				tab.na(p+"cpu", t.key, "CPU not readable: "+oneLine(a.cpuErr))
			} else {
				tab.set(p+"cpu", t.key, ms(a.cpu)/float64(n), "")
			}
		}
	}
	return counts
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
