package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// spoolMemSink keeps what it is given; while failing is set it refuses.
type spoolMemSink struct {
	mu      sync.Mutex
	got     []Record
	failing atomic.Bool
	closed  atomic.Bool
	limit   int // accept at most this many records in all (0: no limit)
}

func (m *spoolMemSink) Name() string { return "mem" }
func (m *spoolMemSink) Write(_ context.Context, recs []Record) error {
	if m.failing.Load() {
		return errors.New("receiver down")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.limit > 0 && len(m.got)+len(recs) > m.limit {
		return errors.New("limit")
	}
	m.got = append(m.got, recs...)
	return nil
}
func (m *spoolMemSink) Close() error { m.closed.Store(true); return nil }
func (m *spoolMemSink) records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.got...)
}

// waitRecords waits until m has n records and checks they are want, in
// order, none twice.
func waitRecords(t *testing.T, m *spoolMemSink, want []Record) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(m.records()) < len(want) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records delivered", len(m.records()), len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := m.records()
	if len(got) != len(want) {
		t.Fatalf("%d records delivered, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Transfer.Path != want[i].Transfer.Path {
			t.Fatalf("record %d is %s, want %s", i, got[i].ID, want[i].ID)
		}
	}
}

func fastSpool(dir string) SpoolConfig {
	return SpoolConfig{Dir: dir, SegmentBytes: 4096, MaxBytes: 4 << 20, Batch: 10,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, CloseTimeout: time.Second}
}

func segments(t *testing.T, dir string) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+spoolSegSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// TestSpoolOutage: 1,000 records written while the sink is down arrive
// in order, once each, when it is back; the delivered segments are gone.
func TestSpoolOutage(t *testing.T) {
	dir := t.TempDir()
	m := &spoolMemSink{}
	m.failing.Store(true)
	var downs, ups, delivered atomic.Int64
	var queued atomic.Int64
	s, err := NewSpool(fastSpool(dir), m, SpoolHooks{
		Queued:    func(b int64) { queued.Store(b) },
		Delivered: func(n int) { delivered.Add(int64(n)) },
		Up: func(up bool, _ error) {
			if up {
				ups.Add(1)
			} else {
				downs.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := testRecords(1000)
	for i := 0; i < len(recs); i += 7 {
		if err := s.Write(context.Background(), recs[i:min(i+7, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	if segments(t, dir) < 10 {
		t.Fatalf("%d segments, want many (segment_bytes 4096)", segments(t, dir))
	}
	if queued.Load() == 0 {
		t.Fatal("Queued hook not called")
	}
	m.failing.Store(false)
	waitRecords(t, m, recs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if downs.Load() != 1 || ups.Load() != 1 || delivered.Load() != 1000 || queued.Load() != 0 {
		t.Fatalf("hooks: down %d up %d delivered %d queued %d", downs.Load(), ups.Load(), delivered.Load(), queued.Load())
	}
	if n := segments(t, dir); n != 0 {
		t.Fatalf("%d segments left after everything was delivered", n)
	}
	if !m.closed.Load() {
		t.Fatal("inner sink not closed")
	}
}

// TestSpoolFull: past max_bytes a batch is refused with ErrSpoolFull and
// none of it kept; after delivery there is room again.
func TestSpoolFull(t *testing.T) {
	m := &spoolMemSink{}
	m.failing.Store(true)
	cfg := fastSpool(t.TempDir())
	cfg.MaxBytes, cfg.SegmentBytes = 8192, 4096
	s, err := NewSpool(cfg, m, SpoolHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := testRecords(200)
	var kept []Record
	var full int
	for i := range recs {
		err := s.Write(context.Background(), recs[i:i+1])
		switch {
		case errors.Is(err, ErrSpoolFull):
			full++
		case err != nil:
			t.Fatal(err)
		default:
			kept = append(kept, recs[i])
		}
	}
	if full == 0 || len(kept) == 0 || s.Queued() > 8192 {
		t.Fatalf("kept %d, refused %d, queued %d", len(kept), full, s.Queued())
	}
	if err := s.Ready(); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("Ready() of a full spool: %v", err)
	}
	m.failing.Store(false)
	waitRecords(t, m, kept)
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready() after delivery: %v", err)
	}
	if err := s.Write(context.Background(), recs[:1]); err != nil {
		t.Fatalf("after delivery: %v", err)
	}
}

// TestSpoolRestart: what a closed spool kept (part delivered, part not)
// is delivered by the next one in the same directory, nothing twice;
// a torn last line (a crash in the middle of a write) is cut.
func TestSpoolRestart(t *testing.T) {
	dir := t.TempDir()
	recs := testRecords(300)
	m := &spoolMemSink{limit: 100} // takes the first 100, then fails
	cfg := fastSpool(dir)
	cfg.CloseTimeout = 50 * time.Millisecond
	s, err := NewSpool(cfg, m, SpoolHooks{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSpool(cfg, m, SpoolHooks{}); err == nil {
		t.Fatal("a second spool opened the same directory")
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, m, recs[:100])
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn line at the end of the last segment.
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+spoolSegSuffix))
	f, err := os.OpenFile(segs[len(segs)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"v":1,"id":"torn","kind":"tra`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	m2 := &spoolMemSink{}
	s2, err := NewSpool(cfg, m2, SpoolHooks{Dropped: func(n int, err error) { t.Errorf("dropped %d: %v", n, err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	waitRecords(t, m2, recs[100:])
	more := testRecords(305)[300:]
	if err := s2.Write(context.Background(), more); err != nil {
		t.Fatal(err)
	}
	waitRecords(t, m2, append(append([]Record(nil), recs[100:]...), more...))
}

// TestSpoolCloseDeadline: Close returns after close_timeout while the
// sink stays down.
func TestSpoolCloseDeadline(t *testing.T) {
	m := &spoolMemSink{}
	m.failing.Store(true)
	cfg := fastSpool(t.TempDir())
	cfg.CloseTimeout = 200 * time.Millisecond
	s, err := NewSpool(cfg, m, SpoolHooks{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testRecords(5)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if err := s.Write(context.Background(), testRecords(1)); !errors.Is(err, ErrSpoolClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}
