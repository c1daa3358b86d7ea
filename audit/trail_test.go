package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/events"
)

// memSink keeps what it is given; fail makes Write fail; block makes
// Write wait until it is closed.
type memSink struct {
	name string

	mu     sync.Mutex
	recs   []Record
	fail   error
	writes int
	block  chan struct{}
}

func (m *memSink) Name() string { return m.name }

func (m *memSink) Write(ctx context.Context, recs []Record) error {
	m.mu.Lock()
	block := m.block
	m.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.fail != nil {
		return m.fail
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memSink) Close() error { return nil }

func (m *memSink) set(f func(*memSink)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m)
}

func (m *memSink) records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.recs...)
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cmdEvent(i int) events.Command {
	return events.Command{Session: events.Session{ID: "s1", Client: "127.0.0.1:5000"}, Verb: "NOOP", Text: fmt.Sprintf("NOOP %d", i), Code: 200}
}

// Every sink gets every record, in order, with a unique ID, a UTC time and
// the schema version.
func TestTrailDeliversInOrder(t *testing.T) {
	a, b := &memSink{name: "a"}, &memSink{name: "b"}
	tr := NewTrail(TrailConfig{Instance: "gw1", Batch: 7}, a, b)
	for i := range 100 {
		tr.Emit(cmdEvent(i))
	}
	tr.Emit(events.BackendDial{}) // no record
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*memSink{a, b} {
		recs := s.records()
		if len(recs) != 100 {
			t.Fatalf("%s: %d records, want 100", s.name, len(recs))
		}
		ids := map[string]bool{}
		for i, r := range recs {
			if r.Command == nil || r.Command.Text != fmt.Sprintf("NOOP %d", i) {
				t.Fatalf("%s: record %d is %+v", s.name, i, r.Command)
			}
			if r.V != SchemaVersion || r.Time.Location() != time.UTC || !strings.HasPrefix(r.ID, "gw1-") || ids[r.ID] {
				t.Fatalf("%s: record %d: v %d, time %v, id %q", s.name, i, r.V, r.Time, r.ID)
			}
			ids[r.ID] = true
		}
	}
}

// A failing sink is tried again with the same batch, so nothing is lost
// and order is kept; it is down (Ready says so) until a Write works, and
// the trail says so in its own records.
func TestTrailRetriesFailingSink(t *testing.T) {
	s := &memSink{name: "flaky", fail: errors.New("disk full")}
	tr := NewTrail(TrailConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, s)
	if err := tr.Ready(); err != nil {
		t.Fatalf("ready before any write: %v", err)
	}
	for i := range 10 {
		tr.Emit(cmdEvent(i))
	}
	waitFor(t, "the sink to be down", func() bool { return tr.Ready() != nil })
	if err := tr.Ready(); !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "flaky") {
		t.Fatalf("Ready: %v", err)
	}
	waitFor(t, "a few retries", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.writes >= 3 })
	s.set(func(m *memSink) { m.fail = nil })
	waitFor(t, "the sink to be up", func() bool { return tr.Ready() == nil })
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var texts, selfs []string
	for _, r := range s.records() {
		switch r.Kind {
		case KindCommand:
			texts = append(texts, r.Command.Text)
		case KindAudit:
			selfs = append(selfs, r.Audit.Event)
		}
	}
	for i, txt := range texts {
		if txt != fmt.Sprintf("NOOP %d", i) {
			t.Fatalf("records out of order: %v", texts)
		}
	}
	if len(texts) != 10 || strings.Join(selfs, ",") != "sink_down,sink_up" {
		t.Fatalf("commands %v, own records %v", texts, selfs)
	}
}

// A full queue drops (Emit never blocks), counts each drop, and the sink
// gets a "dropped" record with the count once it catches up.
func TestTrailDropsWhenFull(t *testing.T) {
	s := &memSink{name: "slow", block: make(chan struct{})}
	var mu sync.Mutex
	metric := 0
	tr := NewTrail(TrailConfig{Queue: 4, Batch: 1, Dropped: func(sink string) {
		mu.Lock()
		defer mu.Unlock()
		if sink == "slow" {
			metric++
		}
	}}, s)
	tr.Emit(cmdEvent(0))
	waitFor(t, "the first write to start", func() bool { return len(tr.sinks[0].q) == 0 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 20; i++ {
			tr.Emit(cmdEvent(i)) // 4 queued, 16 dropped
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit blocked on a full queue")
	}
	close(s.block)
	if err := tr.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "16 records lost") {
		t.Fatalf("Close: %v", err)
	}
	recs := s.records()
	var dropped *Self
	for _, r := range recs {
		if r.Kind == KindAudit && r.Audit.Event == "dropped" {
			dropped = r.Audit
		}
	}
	if len(recs) != 6 || dropped == nil || dropped.Dropped != 16 || dropped.Sink != "slow" {
		t.Fatalf("records: %d, dropped %+v", len(recs), dropped)
	}
	if metric != 16 || tr.Lost()["slow"] != 16 {
		t.Fatalf("metric %d, lost %v", metric, tr.Lost())
	}
}

// Close drains until its deadline, then gives up on a sink that is down
// and says how many records were lost.
func TestTrailCloseDeadline(t *testing.T) {
	s := &memSink{name: "dead", fail: errors.New("unreachable")}
	tr := NewTrail(TrailConfig{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, s)
	for i := range 5 {
		tr.Emit(cmdEvent(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := tr.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "records lost") {
		t.Fatalf("Close: %v", err)
	}
	tr.Emit(cmdEvent(99)) // after Close: ignored, no panic
}
