package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sessionRecords is what one session of test/bench's sessions workload
// (AUTH TLS, USER, PASS, PBSZ, PROT, EPSV, LIST, QUIT) leaves in the
// trail: 12 records, about 4 KiB of JSON in the file.
func sessionRecords(at time.Time) []Record {
	base := Record{V: SchemaVersion, Time: at, Session: "6f1c2a9e0b4d", Listener: "explicit", Client: "127.0.0.1:50412"}
	var out []Record
	add := func(kind string, set func(*Record)) {
		r := base
		r.ID = fmt.Sprintf("gw1-%d-%d", at.UnixNano(), len(out)+1)
		r.Kind = kind
		set(&r)
		out = append(out, r)
	}
	add(KindSessionStart, func(r *Record) { r.SessionStart = &SessionStart{LocalAddr: "127.0.0.1:21"} })
	for _, c := range []struct {
		verb, text string
		code       int
	}{{"AUTH", "AUTH TLS", 234}, {"USER", "USER ftpsgate-bench", 331}} {
		add(KindCommand, func(r *Record) { r.Command = &Command{Verb: c.verb, Text: c.text, Code: c.code} })
	}
	base.User = "ftpsgate-bench"
	add(KindLogin, func(r *Record) { r.Login = &Login{Result: "ok", Code: 230} })
	for _, c := range []struct {
		verb, text string
		code       int
	}{{"PASS", "PASS ****", 230}, {"PBSZ", "PBSZ 0", 200}, {"PROT", "PROT P", 200}, {"EPSV", "EPSV", 229}} {
		add(KindCommand, func(r *Record) { r.Command = &Command{Verb: c.verb, Text: c.text, Code: c.code} })
	}
	add(KindTransfer, func(r *Record) {
		r.Transfer = &Transfer{Verb: "LIST", Direction: "download", Path: "/", Bytes: 180, DurationS: 0.0004, Code: 226, BackendCode: 226, Complete: true, Protected: true}
	})
	add(KindCommand, func(r *Record) { r.Command = &Command{Verb: "LIST", Text: "LIST", Code: 226} })
	add(KindCommand, func(r *Record) { r.Command = &Command{Verb: "QUIT", Text: "QUIT", Code: 221} })
	add(KindSessionEnd, func(r *Record) {
		r.SessionEnd = &SessionEnd{TLSVersion: "TLS 1.3", TLSSuite: "TLS_AES_128_GCM_SHA256", BytesDown: 180, DurationS: 0.009, Reason: "client sent QUIT"}
	})
	return out
}

// cpuTime is the process's user and system time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFileSink is what the file sink costs per record: encoding alone
// (JSON and the chain's SHA-256), and Write (encoding, one write(2) and one
// fsync per batch), with a batch of 1 record (a session at a time: the
// trail's writer wakes for each), 12 (a whole session) and 256 (the most
// the trail takes at once). cpu-ns/record is the process's CPU time (user
// and system), which the wall time of an fsync mostly is not; the file is
// in the test's temporary directory (TMPDIR), whose file system decides
// what an fsync costs.
//
//	go test -run '^$' -bench FileSink -benchtime 2000x ./audit/
func BenchmarkFileSink(b *testing.B) {
	all := sessionRecords(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	for _, batch := range []int{1, 12, 256} {
		recs := make([]Record, batch)
		for i := range recs {
			recs[i] = all[i%len(all)]
		}
		for _, mode := range []string{"encode", "write"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, batch), func(b *testing.B) {
				f, err := OpenFile(FileConfig{Path: filepath.Join(b.TempDir(), "audit.jsonl"), MaxSize: 1 << 40})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				ctx, now := context.Background(), time.Now()
				bytes := 0
				cpu0 := cpuTime(b)
				for b.Loop() {
					if mode == "encode" {
						err = f.encode(recs, now)
					} else {
						err = f.Write(ctx, recs)
					}
					if err != nil {
						b.Fatal(err)
					}
					bytes += f.buf.Len()
				}
				n := float64(b.N * batch)
				b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/record")
				b.ReportMetric(float64(b.Elapsed())/n, "ns/record")
				b.ReportMetric(float64(bytes)/n, "B/record")
			})
		}
	}
}
