package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/internal/testrsyslog"
)

// The shape of TestAuditSyslogOutage's run.
const (
	auditSessions     = 10
	auditPairs        = 50 // STOR then RETR of one file, per session
	auditTransfers    = auditSessions * auditPairs * 2
	auditKillAt       = auditTransfers / 3     // rsyslog is killed before this transfer
	auditRestartAt    = 2 * auditTransfers / 3 // and started again before this one
	auditSyslogHost   = "gw-audit-e2e"
	auditDrainTimeout = 2 * time.Minute // the spool's and the sink's backoffs top out at 30 s each
)

// auditChainSuffix is what the file sink adds to a record's JSON: the hash
// chain (prev, absent on the first line) and the place in it (seq), the
// last two fields; other sinks leave them out.
var auditChainSuffix = regexp.MustCompile(`(,"prev":"[0-9a-f]{64}")?,"seq":[0-9]+}$`)

// auditLine is one record of the audit file or of rsyslog's output.
type auditLine struct {
	ID   string
	Kind string
	JSON string // the record as a sink other than the file sends it
	Rec  audit.Record
}

// TestAuditSyslogOutage is issue 14's acceptance test end to end: the
// gateway binary, configured by its audit: section with a JSON-lines file
// and syslog over TLS (RFC 5425) to a real rsyslogd behind a disk spool,
// in front of the demo backend, hashing downloads too (transfers.hash:
// all); the Go client makes 1,000 transfers over
// explicit FTPS (10 sessions of 50 STOR+RETR pairs of small files of known
// SHA-256). After a third of them rsyslog is killed (SIGKILL, a crash),
// the transfers go on, spread over the outage of 30 s
// (FTPSGATE_RSYSLOG_OUTAGE), rsyslog starts again on the same port, the
// last third runs. Then, once the spool has drained: every record of the
// audit file (the reference) reached rsyslog with exactly its JSON (the
// file's chain fields aside), in the file's order, none missing and none
// extra; the records the sink resends after a reconnect (up to 256,
// documented) are counted as duplicates of the same id; the 1,000 transfer
// records carry the SHA-256 of their files; and the file's hash chain
// verifies.
func TestAuditSyslogOutage(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	begin := time.Now()
	outage := 30 * time.Second
	if v := os.Getenv("FTPSGATE_RSYSLOG_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("FTPSGATE_RSYSLOG_OUTAGE: %v", err)
		}
		outage = d
	}
	ctx := testContext(t, 5*time.Minute+outage)

	rs := testrsyslog.Start(t)
	root := t.TempDir()
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: "auditor", Password: "audit-e2e-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })

	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	spoolDir := filepath.Join(dir, "spool")
	cfg := newGatewayConfig(t, be.Addr(), tlsNone, "")
	cfg.Extra = fmt.Sprintf(`transfers:
  hash: all
audit:
  file:
    path: %q
  syslog:
    address: %s
    network: tls
    ca_file: %q
    hostname: %s
    spool_dir: %q
`, auditPath, rs.TLSAddr, rs.CAFile, auditSyslogHost, spoolDir)
	gw := startGateway(ctx, t, cfg)

	// The transfers, numbered 0..999 in the order they run; before each,
	// the outage's schedule.
	var stopped time.Time
	spread := outage * 9 / 10
	var peakSpool int64
	beforeTransfer := func(n int) {
		switch {
		case n == auditKillAt:
			lines, _ := rs.Lines()
			rs.Kill(t)
			stopped = time.Now()
			t.Logf("transfer %d: rsyslog killed after %d messages", n, len(lines))
		case n > auditKillAt && n < auditRestartAt:
			// Spread over the outage, so that records arrive all along it.
			at := stopped.Add(spread * time.Duration(n-auditKillAt) / time.Duration(auditRestartAt-auditKillAt))
			time.Sleep(time.Until(at))
			peakSpool = max(peakSpool, dirSize(spoolDir))
		case n == auditRestartAt:
			time.Sleep(time.Until(stopped.Add(outage)))
			peakSpool = max(peakSpool, dirSize(spoolDir))
			t.Logf("transfer %d: rsyslog down for %s, %d bytes in the spool; starting it again",
				n, time.Since(stopped).Round(time.Millisecond), peakSpool)
			rs.Start(t)
		}
	}
	want := map[string]string{} // path -> SHA-256
	n := 0
	for s := range auditSessions {
		c := auditDial(ctx, t, cfg.ExplicitAddr, gw)
		if err := c.Login("auditor", "audit-e2e-pw"); err != nil {
			t.Fatalf("session %d: login: %v\n%s", s, err, gw.diagnostics())
		}
		for p := range auditPairs {
			name := fmt.Sprintf("s%02d-f%02d.txt", s, p)
			data := fmt.Appendf(nil, "audit e2e: session %d, file %d, %s\n", s, p, strings.Repeat("x", p))
			sum := sha256.Sum256(data)
			want[name] = hex.EncodeToString(sum[:])
			beforeTransfer(n)
			if err := c.Stor(name, bytes.NewReader(data)); err != nil {
				t.Fatalf("transfer %d: STOR %s: %v\n%s", n, name, err, gw.diagnostics())
			}
			n++
			beforeTransfer(n)
			r, err := c.Retr(name)
			if err != nil {
				t.Fatalf("transfer %d: RETR %s: %v\n%s", n, name, err, gw.diagnostics())
			}
			got, err := io.ReadAll(r)
			if cerr := r.Close(); err == nil {
				err = cerr
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("transfer %d: RETR %s: %v, %d bytes (want %d)\n%s", n, name, err, len(got), len(data), gw.diagnostics())
			}
			n++
		}
		if err := c.Quit(); err != nil {
			t.Errorf("session %d: QUIT: %v", s, err)
		}
	}
	transfersDone := time.Now()
	t.Logf("%d transfers in %s", n, transfersDone.Sub(begin).Round(time.Millisecond))

	// Wait until the file holds every transfer and the end of every session
	// that started (the gateway's start-up probes of its listeners are
	// sessions too), and rsyslog has every record of the file.
	var file, got []auditLine
	var msgs, dups int
	deadline := time.Now().Add(auditDrainTimeout)
	for {
		file = readAuditFile(t, auditPath)
		got, msgs, dups = receivedAudit(t, rs)
		ends := countKind(file, audit.KindSessionEnd)
		if countKind(file, audit.KindTransfer) >= auditTransfers && ends >= auditSessions &&
			ends == countKind(file, audit.KindSessionStart) && len(got) >= len(file) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: the file has %d records (%d session ends), rsyslog %d distinct of them; %s\n%s\n%s",
				auditDrainTimeout, len(file), ends, len(got), firstMissing(file, got), rs.LogTail(), gw.diagnostics())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("spool drained %s after the last transfer", time.Since(transfersDone).Round(time.Millisecond))

	// Every record of the file, in its order, exactly as its JSON.
	if len(got) != len(file) {
		t.Errorf("rsyslog has %d distinct records, the file %d", len(got), len(file))
	}
	for i := range min(len(got), len(file)) {
		if got[i].ID != file[i].ID {
			t.Fatalf("record %d: rsyslog has %s (%s), the file %s (%s): order broken or a record lost",
				i, got[i].ID, got[i].Kind, file[i].ID, file[i].Kind)
		}
		if got[i].JSON != file[i].JSON {
			t.Errorf("record %d (%s) differs:\n rsyslog %s\n    file %s", i, file[i].ID, got[i].JSON, file[i].JSON)
		}
	}

	// The transfers: all there, complete, with the SHA-256 of their file.
	stors, retrs := 0, 0
	for _, l := range file {
		if l.Kind != audit.KindTransfer {
			continue
		}
		x := l.Rec.Transfer
		switch {
		case x == nil || !x.Complete || x.Code != 226 || !x.Protected:
			t.Errorf("transfer record %s: %s", l.ID, l.JSON)
		case x.SHA256 != want[x.Path]:
			t.Errorf("transfer record %s: SHA-256 %s, want %s for %s: %s", l.ID, x.SHA256, want[x.Path], x.Path, l.JSON)
		case x.Verb == "STOR":
			stors++
		case x.Verb == "RETR":
			retrs++
		}
	}
	if stors+retrs != auditTransfers || stors != retrs {
		t.Errorf("the file has %d STOR and %d RETR transfer records, want %d of each", stors, retrs, auditTransfers/2)
	}

	// The file's chain verifies.
	v, err := audit.Verify([]string{auditPath}, nil)
	if err != nil {
		t.Errorf("audit.Verify: %v", err)
	} else if v.Records != len(file) {
		t.Errorf("audit.Verify checked %d records, the file has %d", v.Records, len(file))
	}

	// The gateway saw the outage: its spool took over and gave back.
	log := gw.proc.Log()
	if !strings.Contains(log, "audit sink down") || !strings.Contains(log, "audit sink delivering again") {
		t.Errorf("the gateway's log does not show the syslog sink down and back\n%s", gw.diagnostics())
	}
	t.Logf("%d records in the file (%d transfers), %d messages at rsyslog: %d duplicates (resent after reconnects); outage %s, spool peak %d bytes; run %s",
		len(file), stors+retrs, msgs, dups, outage, peakSpool, time.Since(begin).Round(time.Millisecond))
}

// auditDial opens an explicit-FTPS session to the gateway whose data
// connections resume the control connection's TLS session.
func auditDial(ctx context.Context, t *testing.T, addr string, gw *gateway) *ftp.ServerConn {
	t.Helper()
	tc := &tls.Config{
		InsecureSkipVerify: true, // the gateway's generated certificate
		ServerName:         "127.0.0.1",
		MinVersion:         tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
	c, err := ftp.Dial(addr, ftp.DialWithContext(ctx), ftp.DialWithTimeout(30*time.Second), ftp.DialWithExplicitTLS(tc))
	if err != nil {
		t.Fatalf("dial %s: %v\n%s", addr, err, gw.diagnostics())
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

// readAuditFile reads the complete lines of the audit file.
func readAuditFile(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		js := auditChainSuffix.ReplaceAllString(line, "}")
		if js == line {
			t.Fatalf("audit file line without the chain fields: %s", line)
		}
		l := auditLine{JSON: js}
		if err := json.Unmarshal([]byte(line), &l.Rec); err != nil {
			t.Fatalf("audit file line %q: %v", line, err)
		}
		l.ID, l.Kind = l.Rec.ID, l.Rec.Kind
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// receivedAudit is what rsyslog received from the gateway: the distinct
// records in the order of their first arrival, the number of messages, and
// how many repeated an earlier one (the same id, the same JSON).
func receivedAudit(t *testing.T, rs *testrsyslog.Server) (firsts []auditLine, msgs, dups int) {
	t.Helper()
	lines, err := rs.Lines()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, l := range lines {
		if l.Hostname != auditSyslogHost {
			continue
		}
		msgs++
		var r audit.Record
		if err := json.Unmarshal([]byte(l.Msg), &r); err != nil {
			t.Fatalf("rsyslog message %q: %v", l.Msg, err)
		}
		if l.MsgID != r.Kind || l.StructuredData != "-" {
			t.Fatalf("rsyslog message %+v: MSGID or STRUCTURED-DATA wrong", l)
		}
		if first, ok := seen[r.ID]; ok {
			if first != l.Msg {
				t.Fatalf("record %s arrived twice, differently:\n%s\n%s", r.ID, first, l.Msg)
			}
			dups++
			continue
		}
		seen[r.ID] = l.Msg
		firsts = append(firsts, auditLine{ID: r.ID, Kind: r.Kind, JSON: l.Msg, Rec: r})
	}
	return firsts, msgs, dups
}

// firstMissing names the first record of the file that rsyslog lacks.
func firstMissing(file, got []auditLine) string {
	have := map[string]bool{}
	for _, l := range got {
		have[l.ID] = true
	}
	for i, l := range file {
		if !have[l.ID] {
			return fmt.Sprintf("the first one missing is record %d of the file: %s", i, l.JSON)
		}
	}
	return "none of the file's is missing"
}

func countKind(ls []auditLine, kind string) int {
	n := 0
	for _, l := range ls {
		if l.Kind == kind {
			n++
		}
	}
	return n
}

// dirSize is the size of the files under dir (0 when it cannot be read).
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
