package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ftpsgate/ftpsgate/audit"
)

// The audit part of the features phase: two fresh gateways alike but for
// the audit trail, one without it and one with `audit: {file: {path:
// DIR/audit.jsonl}}` (the file sink's defaults: one write and an fsync per
// batch, no checkpoint key). Through both, the sessions phase's full
// session (AUTH TLS, USER, PASS, PBSZ, PROT P, EPSV, LIST, QUIT) one at a
// time and 8 in parallel, and a curl download and upload of the big file;
// then the audited gateway is stopped with SIGTERM (it drains its trail)
// and its file is checked: the chain verifies (audit.Verify) and it holds a
// transfer record of every LIST, RETR and STOR that was done, complete, the
// uploads' SHA-256 that of the file, nothing dropped. A check that fails
// fails the run: a bench that audits nothing would measure nothing.

// The audit table's columns.
const (
	aNone = "none"
	aFile = "file"
)

// auditBlocks are the passive ranges of the two gateways: free again once
// the hash gateways have stopped (the logins part has featureBlocks[1]).
var auditBlocks = map[string]portBlock{aNone: featureBlocks[0], aFile: featureBlocks[2]}

// auditRows are the table's row ids, to mark a column n/a at once.
var auditRows []string

// defineAuditTable adds the audit table to e.feat and defines its rows.
func defineAuditTable(e *env) *results {
	tab := newTable([]string{aNone, aFile}, map[string]string{
		aNone: "no audit trail", aFile: "audit.file (fsync per batch)",
	}, []quotient{
		{aFile, aNone, "audit ÷ none", false},
		{aFile, aNone, "audit − none", true},
	})
	tab.noLegend = true
	tab.title = "features: the audit trail (audit.file, an fsync per batch) against the same gateway without it"
	e.feat = append(e.feat, tab)
	def := func(m metric) {
		tab.define(m)
		auditRows = append(auditRows, m.id)
	}
	sec := fmt.Sprintf("sessions: AUTH TLS, USER, PASS, PBSZ, PROT P, EPSV, LIST, QUIT (Go client), FTPS→plain vsftpd, %s of %s",
		plural(e.featRounds, "round"), e.loginsFor)
	for _, par := range []int{1, 8} {
		what := "one at a time"
		if par > 1 {
			what = fmt.Sprintf("%d in parallel", par)
		}
		p := fmt.Sprintf("audit/sess/%d/", par)
		def(metric{id: p + "rate", label: what + ": sessions/s", prec: 1, higher: true, section: sec})
		def(metric{id: p + "p50", label: what + ": latency p50, ms", prec: 1, section: sec})
		def(metric{id: p + "cpu", label: what + ": gateway CPU ms/session", prec: 2, section: sec})
	}
	sec = fmt.Sprintf("relay: curl, %s file, FTPS→plain vsftpd, %s", human(e.bigSize), plural(e.featRounds, "round"))
	for _, d := range []string{"download", "upload"} {
		def(metric{id: "audit/" + d + "/mbps", label: "curl " + d + ", MB/s", prec: 0, higher: true, section: sec})
		def(metric{id: "audit/" + d + "/cpu", label: "curl " + d + ", gateway CPU s/GiB", prec: 2, section: sec})
	}
	return tab
}

// measureAuditGateways starts the two gateways, measures, stops them and
// checks the audit file.
func measureAuditGateways(ctx context.Context, e *env, tab *results) {
	auditDir := filepath.Join(e.dir, "ftpsgate-audit")
	auditPath := filepath.Join(auditDir, "audit.jsonl")
	var audited *gateway
	ts := []*target{{key: aNone}, {key: aFile}}
	for _, t := range ts {
		if err := checkBindable(auditBlocks[t.key]); err != nil {
			t.na = err.Error()
			continue
		}
		name, extra := "ftpsgate-noaudit", hashYAML("uploads")
		if t.key == aFile {
			name = "ftpsgate-audit"
			extra += fmt.Sprintf("audit:\n  file:\n    path: %q\n", auditPath)
		}
		g, err := startGatewayWith(ctx, e, name, e.plainBackend, "none", auditBlocks[t.key], extra)
		if err != nil {
			t.na = "gateway did not start: " + oneLine(err)
			logf("features: audit %s: n/a: %s", t.key, t.na)
			continue
		}
		defer g.proc.stop()
		t.addr, t.cpu, t.pid = g.Addr, processCPU(g.proc.pid()), g.proc.pid()
		if t.key == aFile {
			audited = g
		}
	}

	session := func(ctx context.Context, i int) (time.Duration, error) { return oneSession(ctx, e, ts[i].addr) }
	smoke(ctx, ts, "session", session)
	// The write(2) calls of each gateway over the sessions: the audited
	// one's extra writes per session are its trail's batches (one write
	// and one fsync each).
	sess := map[string]tally{}
	var writes []string
	var extras []float64
	for _, par := range []int{1, 8} {
		w0 := syscw(ts)
		n := measureRates(ctx, e, tab, ts, []int{par}, "audit/sess", "sessions", session)
		w1 := syscw(ts)
		for k, c := range n {
			s := sess[k]
			s.tried += c.tried
			s.ok += c.ok
			sess[k] = s
		}
		if w0 == nil || w1 == nil || n[aNone].tried == 0 || n[aFile].tried == 0 {
			continue
		}
		extra := float64(w1[aFile]-w0[aFile])/float64(n[aFile].tried) - float64(w1[aNone]-w0[aNone])/float64(n[aNone].tried)
		what := "one at a time"
		if par > 1 {
			what = fmt.Sprintf("%d in parallel", par)
		}
		writes = append(writes, fmt.Sprintf("%.1f %s", extra, what))
		extras = append(extras, extra)
	}
	curl := measureCurl(ctx, e, tab, ts, "audit", e.featRounds)
	if audited == nil || ts[1].na != "" {
		return
	}
	// The smoke session is in the file too.
	s := sess[aFile]
	s.tried++
	s.ok++
	sess[aFile] = s

	// SIGTERM: the gateway ends its sessions and drains the trail (10 s
	// at most) before it exits.
	exited := audited.proc.terminate(30 * time.Second)
	probe := fsyncProbe(auditDir)
	summary, perSession, err := checkAuditFile(e, auditPath, sess[aFile], curl)
	if err == nil && !exited {
		err = errors.New("the audited gateway did not exit within 30 s of SIGTERM: its trail may not be drained")
	}
	if err != nil {
		why := "the audit check failed: " + oneLine(err)
		logf("features: %s", why)
		e.fail = append(e.fail, why)
		for _, id := range auditRows {
			tab.na(id, aFile, why)
		}
		tab.footer = append(tab.footer, "**"+why+"**")
	} else {
		logf("features: %s", summary)
		tab.footer = append(tab.footer, summary)
	}
	if len(writes) > 0 && err == nil {
		for i, x := range extras {
			if x > 0 {
				writes[i] += fmt.Sprintf(" (%.1f records a batch)", perSession/x)
			}
		}
		tab.footer = append(tab.footer, fmt.Sprintf("Write(2) calls per session, the audited gateway's less the other's (/proc/PID/io): %s. "+
			"They are the trail's batches, one write and one fsync each, for the %.0f records of a session: its writer takes whatever is queued as one batch, so a busier gateway fsyncs less often per record.",
			strings.Join(writes, "; "), perSession))
	}
	if probe != "" {
		tab.footer = append(tab.footer, probe)
	}
}

// syscw reads the write(2) calls (syscw of /proc/PID/io) of the two
// gateways, by column; nil if it cannot.
func syscw(ts []*target) map[string]int64 {
	out := map[string]int64{}
	for _, t := range ts {
		if t.pid == 0 {
			return nil
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", t.pid))
		if err != nil {
			return nil
		}
		found := false
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "syscw:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return nil
				}
				out[t.key], found = n, true
			}
		}
		if !found {
			return nil
		}
	}
	return out
}

// checkAuditFile verifies the chain of the audit file (and of any file
// rotated from it) and checks its transfer records against what the bench
// did: sess (LIST sessions tried and done) and curl (per "file/download"
// and "file/upload"). It returns a one-paragraph summary.
func checkAuditFile(e *env, path string, sess tally, curl map[string]tally) (summary string, perSession float64, err error) {
	ext := filepath.Ext(path)
	rotated, err := filepath.Glob(strings.TrimSuffix(path, ext) + "-*" + ext)
	if err != nil {
		return "", 0, err
	}
	slices.Sort(rotated) // their names sort by time
	files := append(rotated, path)
	v, err := audit.Verify(files, nil)
	if err != nil {
		return "", 0, fmt.Errorf("audit.Verify: %w", err)
	}
	type verbCount struct{ all, complete int }
	kinds := map[string]int{}
	verbs := map[string]*verbCount{}
	var size int64
	var dropped, down int64
	var loginsOK int
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return "", 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), audit.MaxLine)
		for sc.Scan() {
			size += int64(len(sc.Bytes()) + 1)
			var r audit.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				f.Close()
				return "", 0, fmt.Errorf("%s: %w", name, err)
			}
			kinds[r.Kind]++
			switch {
			case r.Login != nil && r.Login.Result == "ok":
				loginsOK++
			case r.Audit != nil && r.Audit.Event == "dropped":
				dropped += r.Audit.Dropped
			case r.Audit != nil && r.Audit.Event == "sink_down":
				down++
			case r.Transfer != nil:
				c := verbs[r.Transfer.Verb]
				if c == nil {
					c = &verbCount{}
					verbs[r.Transfer.Verb] = c
				}
				c.all++
				if !r.Transfer.Complete {
					break
				}
				c.complete++
				if r.Transfer.Verb == "STOR" && (r.Transfer.SHA256 != e.bigSum || r.Transfer.Size != e.bigSize) {
					f.Close()
					return "", 0, fmt.Errorf("record %s: a complete STOR with sha256 %q and size %d, not the file's %s and %d",
						r.ID, r.Transfer.SHA256, r.Transfer.Size, e.bigSum, e.bigSize)
				}
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	if v.Records != sumValues(kinds) {
		return "", 0, fmt.Errorf("audit.Verify counted %d records, the file holds %d", v.Records, sumValues(kinds))
	}
	if dropped > 0 || down > 0 {
		return "", 0, fmt.Errorf("the trail dropped %d records and was down %d times", dropped, down)
	}
	if kinds[audit.KindSessionStart] != kinds[audit.KindSessionEnd] {
		return "", 0, fmt.Errorf("%d session_start records but %d session_end", kinds[audit.KindSessionStart], kinds[audit.KindSessionEnd])
	}
	// Every transfer done has a complete record; no more records than
	// transfers tried (a failed one may or may not have reached the
	// backend).
	want := []struct {
		verb string
		t    tally
	}{{"LIST", sess}, {"RETR", curl[aFile+"/download"]}, {"STOR", curl[aFile+"/upload"]}}
	for _, w := range want {
		c := verbs[w.verb]
		if c == nil {
			c = &verbCount{}
		}
		if c.complete < w.t.ok || c.all > w.t.tried {
			return "", 0, fmt.Errorf("%d %s transfer records (%d complete) for %d done and %d tried", c.all, w.verb, c.complete, w.t.ok, w.t.tried)
		}
		delete(verbs, w.verb)
	}
	if len(verbs) > 0 {
		var other []string
		for verb, c := range verbs {
			other = append(other, fmt.Sprintf("%d %s", c.all, verb))
		}
		slices.Sort(other)
		return "", 0, fmt.Errorf("transfer records the bench did not ask for: %s", strings.Join(other, ", "))
	}
	sessions := kinds[audit.KindSessionStart]
	if sessions < sess.ok || loginsOK < sess.ok {
		return "", 0, fmt.Errorf("%d session_start and %d successful login records for %d sessions done", sessions, loginsOK, sess.ok)
	}
	per := float64(v.Records) / float64(max(sessions, 1))
	return fmt.Sprintf("The audit file, checked after the gateway stopped (SIGTERM): `audit.Verify` passed, %d records in %s (%s), %.1f records and %.0f bytes per session; "+
		"a complete transfer record of every LIST (%d sessions), RETR (%d) and STOR (%d, each with the file's SHA-256); nothing dropped.",
		v.Records, plural(v.Files, "file"), humanBytes(size), per, float64(size)/float64(max(sessions, 1)),
		sess.ok, curl[aFile+"/download"].ok, curl[aFile+"/upload"].ok), per, nil
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func humanBytes(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// fsyncProbe times fsync after a 4 KiB append (about a batch of a session's
// records) in dir, 50 times, to say what an fsync costs on the file system
// the audit file was on; "" if it cannot.
func fsyncProbe(dir string) string {
	path := filepath.Join(dir, "fsync-probe")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return ""
	}
	defer os.Remove(path)
	defer f.Close()
	buf := []byte(strings.Repeat("x", 4095) + "\n")
	var lat []time.Duration
	for range 50 {
		if _, err := f.Write(buf); err != nil {
			return ""
		}
		start := time.Now()
		if err := f.Sync(); err != nil {
			return ""
		}
		lat = append(lat, time.Since(start))
	}
	return fmt.Sprintf("An fsync after a 4 KiB append in the audit file's directory (%s) took %.2f ms (p50; p99 %.2f ms, 50 tries): the wait of the trail's writer, not the sessions'.",
		fsType(dir), ms(percentile(lat, 50)), ms(percentile(lat, 99)))
}

// fsType names the file system of dir, for the common ones.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "file system unknown"
	}
	switch uint32(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs: fsync costs nothing there"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system 0x%x", uint32(st.Type))
}
