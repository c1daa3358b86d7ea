package icap_test

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/testicap"
)

// These tests run against a real c-icap with virus_scan and clamd
// (internal/testicap), with FTPSGATE_INTEROP=1.

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newClient(t *testing.T, cfg icap.Config) *icap.Client {
	t.Helper()
	c, err := icap.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func server(t *testing.T, u string) icap.Server {
	t.Helper()
	s, err := icap.ParseServer(u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// feed runs one transfer through a filter in chunks of size chunk and
// returns the verdict (a veto made in Write included).
func feed(t *testing.T, f filter.Filter, data []byte, chunk int) (filter.Verdict, error) {
	t.Helper()
	for len(data) > 0 {
		n := min(chunk, len(data))
		if err := f.Write(data[:n]); err != nil {
			if v, ok := filter.VetoOf(err); ok {
				return v, nil
			}
			return filter.Verdict{}, err
		}
		data = data[n:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f.Finish(ctx)
}

var meta = filter.Meta{Session: "s1", User: "alice", Verb: "STOR", Direction: filter.Upload, Path: "/in/file.bin", BackendPath: "/in/file.bin"}

func TestRealScanVerdicts(t *testing.T) {
	infected := randomBytes(t, 300<<10)
	srv := testicap.Start(t, infected)
	clean := randomBytes(t, len(infected))
	var mu sync.Mutex
	var reports []icap.Report
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URL())}, Timeout: 20 * time.Second,
		Hooks: icap.Hooks{Done: func(r icap.Report) { mu.Lock(); reports = append(reports, r); mu.Unlock() }}})

	o, err := c.Options(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !o.Supports("REQMOD") || !o.Supports("RESPMOD") || o.ISTag == "" || o.Preview < 0 || !o.Allow204 {
		t.Fatalf("OPTIONS: %+v", o)
	}

	for _, dir := range []filter.Direction{filter.Upload, filter.Download} {
		m := meta
		m.Direction = dir
		v, err := feed(t, c.NewFilter(m), infected, 16<<10)
		if err != nil {
			t.Fatal(err)
		}
		want := "Transfer blocked: " + srv.Threat(0) + " (ref "
		if !v.Veto || v.Code != 550 || !strings.HasPrefix(v.Text, want) {
			t.Fatalf("%v of the signature file: %+v, want a 550 veto %q...\n%s", dir, v, want, srv.Log())
		}
		v, err = feed(t, c.NewFilter(m), clean, 16<<10)
		if err != nil || v.Veto {
			t.Fatalf("%v of a clean file: %+v %v", dir, v, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 4 {
		t.Fatalf("%d reports, want 4", len(reports))
	}
	for i, r := range reports {
		wantOut := icap.Blocked
		if i%2 == 1 {
			wantOut = icap.Clean
		}
		if r.Outcome != wantOut || r.Err != nil || r.Bytes != int64(len(infected)) || r.Server != srv.URL() {
			t.Errorf("report %d: %+v, want %v of %d bytes", i, r, wantOut, len(infected))
		}
		if wantOut == icap.Clean && r.Status != 204 {
			t.Errorf("report %d: a clean file answered %d, want 204", i, r.Status)
		}
	}
	if reports[0].Method != "REQMOD" || reports[2].Method != "RESPMOD" {
		t.Errorf("methods %s, %s", reports[0].Method, reports[2].Method)
	}
}

// A file shorter than the preview goes whole in the preview with ieof; a
// longer one in a preview and then the rest after 100 Continue. Without a
// preview, the body goes at once. All judged alike.
func TestRealPreview(t *testing.T) {
	small := randomBytes(t, 100) // inside c-icap's 1024-byte preview
	large := randomBytes(t, 64<<10)
	srv := testicap.Start(t, small, large)
	for _, tc := range []struct {
		name    string
		preview int
		data    []byte
		threat  string
		sent    int
	}{
		{"small auto", icap.PreviewAuto, small, srv.Threat(0), 100},
		{"large auto", icap.PreviewAuto, large, srv.Threat(1), 1024},
		{"large 10", 10, large, srv.Threat(1), 10},
		{"large off", icap.PreviewOff, large, srv.Threat(1), -1},
		{"clean small auto", icap.PreviewAuto, randomBytes(t, 100), "", 100},
		{"clean large off", icap.PreviewOff, randomBytes(t, 5000), "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep icap.Report
			c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URL())}, Timeout: 20 * time.Second,
				Preview: tc.preview, Hooks: icap.Hooks{Done: func(r icap.Report) { rep = r }}})
			v, err := feed(t, c.NewFilter(meta), tc.data, 4096)
			if err != nil {
				t.Fatal(err)
			}
			if tc.threat != "" && (!v.Veto || !strings.Contains(v.Text, tc.threat)) {
				t.Fatalf("verdict %+v, want %s", v, tc.threat)
			}
			if tc.threat == "" && v.Veto {
				t.Fatalf("verdict %+v, want clean", v)
			}
			if rep.Preview != tc.sent || rep.Bytes != int64(len(tc.data)) {
				t.Fatalf("preview %d bytes %d, want %d and %d", rep.Preview, rep.Bytes, tc.sent, len(tc.data))
			}
		})
	}
}

// Scans reuse their connection: after several sequential scans the pool
// holds one idle connection, and c-icap's log saw no new one per scan.
func TestRealPoolReuse(t *testing.T) {
	srv := testicap.Start(t)
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URL())}, Timeout: 20 * time.Second})
	for i := range 5 {
		v, err := feed(t, c.NewFilter(meta), randomBytes(t, 2000+i), 512)
		if err != nil || v.Veto {
			t.Fatalf("scan %d: %+v %v", i, v, err)
		}
		if n := c.Idle(0); n != 1 {
			t.Fatalf("after scan %d: %d idle connections, want 1 (reused)", i, n)
		}
	}
}

// c-icap stopped: on_error allow passes, block vetoes with 451, both
// within the timeout; started again, scans work again.
func TestRealScannerDown(t *testing.T) {
	srv := testicap.Start(t)
	data := randomBytes(t, 50<<10)
	srv.Stop()
	for _, tc := range []struct {
		action icap.Action
		veto   bool
	}{{icap.Allow, false}, {icap.Block, true}} {
		c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URL())}, Timeout: 3 * time.Second, OnError: tc.action})
		start := time.Now()
		v, err := feed(t, c.NewFilter(meta), data, 8192)
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("on_error %v: verdict after %v", tc.action, el)
		}
		if v.Veto != tc.veto || (tc.veto && v.Code != 451) {
			t.Fatalf("on_error %v: %+v", tc.action, v)
		}
	}
	srv.Start()
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URL())}, Timeout: 20 * time.Second})
	if v, err := feed(t, c.NewFilter(meta), data, 8192); err != nil || v.Veto {
		t.Fatalf("after the restart: %+v %v", v, err)
	}
}

// A first server that is down hands the scan to the second.
func TestRealFailover(t *testing.T) {
	infected := randomBytes(t, 10000)
	srv := testicap.Start(t, infected)
	dead := "icap://" + deadAddr(t) + "/virus_scan"
	var failed []string
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, dead), server(t, srv.URL())}, Timeout: 5 * time.Second,
		Hooks: icap.Hooks{ServerError: func(s string, err error) { failed = append(failed, s) }}})
	f := c.NewFilter(meta)
	v, err := feed(t, f, infected, 1000)
	if err != nil || !v.Veto || !strings.Contains(v.Text, srv.Threat(0)) {
		t.Fatalf("verdict %+v %v report %+v\n%s", v, err, f.Report(), srv.Log())
	}
	if len(failed) != 1 || failed[0] != dead {
		t.Fatalf("server errors %v, want %s", failed, dead)
	}
}

// virus_scan outside its simple mode answers before the body ends and,
// finding the threat then, cuts the body it sends back without naming the
// threat: that is a block too, never a pass. A clean file passes.
func TestRealDefaultMode(t *testing.T) {
	infected := randomBytes(t, 200<<10)
	srv := testicap.Start(t, infected)
	c := newClient(t, icap.Config{Servers: []icap.Server{server(t, srv.URLDefault())}, Timeout: 20 * time.Second})
	for _, dir := range []filter.Direction{filter.Upload, filter.Download} {
		m := meta
		m.Direction = dir
		f := c.NewFilter(m)
		v, err := feed(t, f, infected, 16<<10)
		if err != nil || !v.Veto || v.Code != 550 {
			t.Fatalf("%v of the signature file: %+v %v; report %+v\n%s", dir, v, err, f.Report(), srv.Log())
		}
		f = c.NewFilter(m)
		v, err = feed(t, f, randomBytes(t, len(infected)), 16<<10)
		if err != nil || v.Veto {
			t.Fatalf("%v of a clean file: %+v %v; report %+v", dir, v, err, f.Report())
		}
	}
}
