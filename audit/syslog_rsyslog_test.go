package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testrsyslog"
)

// mixedRecords are records of several kinds, severities and odd text.
func mixedRecords(n int) []Record {
	recs := testRecords(n)
	for i := range recs {
		switch i % 4 {
		case 1:
			recs[i].Kind, recs[i].Transfer = KindLogin, nil
			recs[i].Login = &Login{Result: "failed", Reason: "bad password \"quoted\" \\ | = \t tab", Code: 530}
		case 2:
			recs[i].Kind, recs[i].Transfer = KindCommand, nil
			recs[i].Command = &Command{Verb: "RETR", Text: "RETR /dir with spaces/ünïcode.txt", Code: 150}
		case 3:
			recs[i].Transfer.Complete, recs[i].Transfer.Error = false, "backend closed the data connection"
		}
	}
	return recs
}

// TestRsyslogDelivery: records sent over UDP, TCP and TLS (JSON and CEF)
// come back from rsyslog's file with every field intact.
func TestRsyslogDelivery(t *testing.T) {
	srv := testrsyslog.Start(t)
	recs := mixedRecords(20)
	for _, c := range []struct{ network, format, addr, input string }{
		{SyslogUDP, SyslogJSON, srv.UDPAddr, "imudp"},
		{SyslogTCP, SyslogJSON, srv.TCPAddr, "imptcp"},
		{SyslogTLS, SyslogJSON, srv.TLSAddr, "imtcp"},
		{SyslogTLS, SyslogCEF, srv.TLSAddr, "imtcp"},
	} {
		t.Run(c.network+"-"+c.format, func(t *testing.T) {
			before, err := srv.Lines()
			if err != nil {
				t.Fatal(err)
			}
			host := "gw-" + c.network + "-" + c.format
			s, err := NewSyslog(SyslogConfig{Network: c.network, Format: c.format, Address: c.addr, CAFile: caFor(c.network, srv.CAFile), Hostname: host, Version: "test"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Write(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			all := srv.WaitLines(t, len(before)+len(recs), 15*time.Second)
			var got []testrsyslog.Line
			for _, l := range all[len(before):] {
				if l.Hostname == host {
					got = append(got, l)
				}
			}
			if len(got) != len(recs) {
				t.Fatalf("%d of %d messages from %s", len(got), len(recs), host)
			}
			for i, l := range got {
				r := &recs[i]
				if l.Input != c.input || l.PRI != FacilityLocal0*8+SyslogSeverity(r) || l.AppName != "ftpsgate" ||
					l.ProcID != strconv.Itoa(os.Getpid()) || l.MsgID != r.Kind || l.StructuredData != "-" {
					t.Errorf("record %d header: %+v", i, l)
				}
				if c.format == SyslogCEF {
					_, ext, err := parseCEF(l.Msg)
					if err != nil || ext["cs2"] != r.ID || ext["suser"] != r.User {
						t.Errorf("record %d CEF %q: %v %v", i, l.Msg, err, ext)
					}
					if r.Login != nil && ext["msg"] != cefControls(r.Login.Reason) {
						t.Errorf("record %d CEF msg %q, want %q", i, ext["msg"], cefControls(r.Login.Reason))
					}
					continue
				}
				want, _ := json.Marshal(r)
				if l.Msg != string(want) {
					t.Errorf("record %d:\n got %s\nwant %s", i, l.Msg, want)
				}
			}
		})
	}
}

// TestRsyslogLong: over TLS, a record longer than max_message (8192 by
// default, rsyslog's default limit) reaches rsyslog cut at 8192 bytes with
// its length in the STRUCTURED-DATA; the sink counts it.
func TestRsyslogLong(t *testing.T) {
	srv := testrsyslog.Start(t)
	s, err := NewSyslog(SyslogConfig{Address: srv.TLSAddr, CAFile: srv.CAFile, Hostname: "gw-long"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := testRecords(2)
	recs[0].Transfer.Path = "/" + strings.Repeat("ü", 10000)
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	lines := srv.WaitLines(t, 2, 15*time.Second)
	full, _ := json.Marshal(&recs[0])
	if !strings.HasPrefix(lines[0].StructuredData, `[truncated@32473 length="`) || !strings.HasPrefix(string(full), lines[0].Msg) || len(lines[0].Msg) < 8000 {
		t.Fatalf("long record: SD %q, %d bytes of MSG", lines[0].StructuredData, len(lines[0].Msg))
	}
	whole, _ := json.Marshal(&recs[1])
	if lines[1].StructuredData != "-" || lines[1].Msg != string(whole) || s.Truncated() != 1 {
		t.Fatalf("short record after it: %+v, truncated %d", lines[1], s.Truncated())
	}
}

func caFor(network, ca string) string {
	if network == SyslogTLS {
		return ca
	}
	return ""
}

// TestRsyslogSpoolOutage: 1,000 records over TLS through a spool, with
// rsyslog stopped for a while in the middle and started again on the same
// port: every record arrives, in order; the records of the resend window
// arrive twice (same id), none is lost. Stopped with SIGTERM, and killed
// with SIGKILL (a crash). The outage lasts FTPSGATE_RSYSLOG_OUTAGE
// (default 30s, the issue's).
func TestRsyslogSpoolOutage(t *testing.T) {
	t.Run("sigterm", func(t *testing.T) { testRsyslogSpoolOutage(t, false) })
	t.Run("sigkill", func(t *testing.T) { testRsyslogSpoolOutage(t, true) })
}

func testRsyslogSpoolOutage(t *testing.T, kill bool) {
	srv := testrsyslog.Start(t)
	outage := 30 * time.Second
	if v := os.Getenv("FTPSGATE_RSYSLOG_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		outage = d
	}
	sl, err := NewSyslog(SyslogConfig{Address: srv.TLSAddr, CAFile: srv.CAFile, Hostname: "gw-spool",
		BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var downs, ups atomic.Int64
	sp, err := NewSpool(SpoolConfig{Dir: t.TempDir(), Batch: 50, BackoffMin: 50 * time.Millisecond, BackoffMax: 500 * time.Millisecond, CloseTimeout: 5 * time.Second},
		sl, SpoolHooks{Up: func(up bool, err error) {
			if up {
				ups.Add(1)
			} else {
				downs.Add(1)
				t.Logf("sink down: %v", err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	recs := testRecords(1000)
	for i := range recs {
		recs[i].ID = fmt.Sprintf("spool-%04d", i)
	}
	write := func(from, to int) {
		for i := from; i < to; i += 10 {
			if err := sp.Write(context.Background(), recs[i:min(i+10, to)]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	write(0, 300)
	if kill {
		srv.Kill(t)
	} else {
		srv.Stop(t)
	}
	stopped := time.Now()
	write(300, 700)
	t.Logf("rsyslog stopped; %d bytes spooled", sp.Queued())
	time.Sleep(time.Until(stopped.Add(outage)))
	srv.Start(t)
	write(700, 1000)

	deadline := time.Now().Add(60 * time.Second)
	var firsts []string
	var lines, dups int
	for {
		all, err := srv.Lines()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		firsts, lines, dups = firsts[:0], 0, 0
		for _, l := range all {
			if l.Hostname != "gw-spool" {
				continue
			}
			lines++
			var r Record
			if err := json.Unmarshal([]byte(l.Msg), &r); err != nil {
				t.Fatalf("message %q: %v", l.Msg, err)
			}
			if seen[r.ID] {
				dups++
				continue
			}
			seen[r.ID] = true
			firsts = append(firsts, r.ID)
		}
		if len(firsts) >= len(recs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(firsts) != len(recs) {
		t.Fatalf("%d of %d records arrived (%d lines)\n%s", len(firsts), len(recs), lines, srv.LogTail())
	}
	for i, id := range firsts {
		if id != recs[i].ID {
			t.Fatalf("record %d is %s, want %s: order broken", i, id, recs[i].ID)
		}
	}
	t.Logf("%d records, %d messages, %d duplicates (resent after the outage), outage %s, sink down %d / up %d times",
		len(recs), lines, dups, outage, downs.Load(), ups.Load())
}
