package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
)

// Defaults of TrailConfig.
const (
	DefaultQueue      = 4096
	DefaultBatch      = 256
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	// readyCache is how long a sink's own readiness probe (a Sink with a
	// Ready method) stands: admission asks on every connection.
	readyCache = time.Second
)

// TrailConfig configures a Trail; its zero value works.
type TrailConfig struct {
	Instance   string        // the first part of record IDs; "": the host name
	Queue      int           // records queued per sink; 0: DefaultQueue
	Batch      int           // records per Write at most; 0: DefaultBatch
	MinBackoff time.Duration // the first wait before a failed Write is tried again; 0: DefaultMinBackoff
	MaxBackoff time.Duration // the longest; 0: DefaultMaxBackoff
	Log        zerolog.Logger
	// Dropped is told of every record a full queue dropped (a metric);
	// nil: none.
	Dropped func(sink string)
}

func (c TrailConfig) queue() int {
	if c.Queue > 0 {
		return c.Queue
	}
	return DefaultQueue
}

func (c TrailConfig) batch() int {
	if c.Batch > 0 {
		return c.Batch
	}
	return DefaultBatch
}

func (c TrailConfig) minBackoff() time.Duration {
	if c.MinBackoff > 0 {
		return c.MinBackoff
	}
	return DefaultMinBackoff
}

func (c TrailConfig) maxBackoff() time.Duration {
	if c.MaxBackoff > 0 {
		return c.MaxBackoff
	}
	return DefaultMaxBackoff
}

// Trail is the audit trail: an events.Sink that turns each event into a
// Record and hands it to every sink, through a bounded queue per sink and
// one delivery goroutine per sink. Emit never blocks: a full queue drops
// the record, counts it (TrailConfig.Dropped), logs once per episode, and
// the sink gets a KindAudit "dropped" record with the count as soon as its
// queue has room again. A failing Write is tried again with exponential
// backoff, with the same batch, so that order is kept; a sink that fails
// is down (Ready says so, and a "sink_down" record goes to every sink)
// until a Write succeeds ("sink_up").
type Trail struct {
	cfg   TrailConfig
	ids   *IDs
	log   zerolog.Logger
	sinks []*delivery

	mu     sync.RWMutex // Record holds it for reading; Close for writing
	closed bool
}

// delivery is one sink, its queue and its state.
type delivery struct {
	sink    Sink
	q       chan Record
	dropped atomic.Int64 // since the last "dropped" record
	lost    atomic.Int64 // dropped in all, and what Close could not deliver
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	downErr error // the last Write's error; nil: up

	probeMu  sync.Mutex
	probeAt  time.Time
	probeErr error
}

// NewTrail starts a trail delivering to sinks.
func NewTrail(cfg TrailConfig, sinks ...Sink) *Trail {
	t := &Trail{cfg: cfg, ids: NewIDs(cfg.Instance), log: cfg.Log}
	for _, s := range sinks {
		ctx, cancel := context.WithCancel(context.Background())
		d := &delivery{sink: s, q: make(chan Record, cfg.queue()), ctx: ctx, cancel: cancel, done: make(chan struct{})}
		t.sinks = append(t.sinks, d)
		go t.run(d)
	}
	return t
}

// Emit makes the record of e, if it has one, and queues it for every sink.
func (t *Trail) Emit(e events.Event) {
	if r, ok := Convert(e); ok {
		t.Record(r)
	}
}

// Record queues r for every sink, with V, ID and Time set when they are
// not. It never blocks.
func (t *Trail) Record(r Record) {
	t.stamp(&r)
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closed {
		return
	}
	for _, d := range t.sinks {
		select {
		case d.q <- r:
		default:
			t.drop(d)
		}
	}
}

func (t *Trail) stamp(r *Record) {
	if r.V == 0 {
		r.V = SchemaVersion
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	if r.ID == "" {
		r.ID = t.ids.Next(r.Time)
	}
}

// self is one of the trail's own records.
func (t *Trail) self(s Self) Record {
	r := Record{Kind: KindAudit, Audit: &s}
	t.stamp(&r)
	return r
}

func (t *Trail) drop(d *delivery) {
	d.lost.Add(1)
	if d.dropped.Add(1) == 1 {
		t.log.Error().Str("sink", d.sink.Name()).Msg("audit queue full: records dropped (a \"dropped\" record follows when the sink catches up)")
	}
	if t.cfg.Dropped != nil {
		t.cfg.Dropped(d.sink.Name())
	}
}

// run is d's delivery goroutine: batches of what is queued, in order.
func (t *Trail) run(d *delivery) {
	defer close(d.done)
	batch := make([]Record, 0, t.cfg.batch())
	for {
		r, ok := <-d.q
		if !ok {
			return
		}
		batch = append(batch[:0], r)
	fill:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-d.q:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		t.deliver(d, batch)
		if n := d.dropped.Swap(0); n > 0 {
			t.deliver(d, []Record{t.self(Self{Event: "dropped", Sink: d.sink.Name(), Dropped: n})})
		}
	}
}

// deliver writes batch to d's sink, again and again with backoff until it
// succeeds or Close gives up.
func (t *Trail) deliver(d *delivery, batch []Record) {
	wait := t.cfg.minBackoff()
	for {
		err := d.sink.Write(d.ctx, batch)
		if err == nil {
			if d.setDown(nil) {
				t.log.Info().Str("sink", d.sink.Name()).Msg("audit sink back: records delivered again")
				t.Record(t.self(Self{Event: "sink_up", Sink: d.sink.Name()}))
			}
			return
		}
		if d.setDown(err) {
			t.log.Error().Err(err).Str("sink", d.sink.Name()).Msg("audit sink down: records queue until it is back")
			t.Record(t.self(Self{Event: "sink_down", Sink: d.sink.Name(), Error: err.Error()}))
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-d.ctx.Done():
			timer.Stop()
			d.lost.Add(int64(len(batch)))
			t.log.Error().Err(err).Str("sink", d.sink.Name()).Int("records", len(batch)).Msg("audit sink closed while down: records lost")
			return
		}
		wait = min(2*wait, t.cfg.maxBackoff())
	}
}

// setDown records the last Write's result and reports whether the sink
// changed state.
func (d *delivery) setDown(err error) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := (d.downErr == nil) != (err == nil)
	d.downErr = err
	return changed
}

func (d *delivery) down() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.downErr
}

// probe asks a sink that can tell (a Ready method: the file sink checks
// that its directory is writable) whether it can be written now; the
// answer stands for readyCache.
func (d *delivery) probe() error {
	p, ok := d.sink.(interface{ Ready() error })
	if !ok {
		return nil
	}
	d.probeMu.Lock()
	defer d.probeMu.Unlock()
	if now := time.Now(); d.probeAt.IsZero() || now.Sub(d.probeAt) >= readyCache {
		d.probeErr, d.probeAt = p.Ready(), now
	}
	return d.probeErr
}

// Ready returns nil when every sink can be written: its last Write
// succeeded and, for a sink that can tell, it can be written now.
// Otherwise it says which cannot, and why. It is the gate of
// audit.required (proxy.WithGate).
func (t *Trail) Ready() error {
	for _, d := range t.sinks {
		err := d.down()
		if err == nil {
			err = d.probe()
		}
		if err != nil {
			return fmt.Errorf("audit sink %s cannot be written: %w", d.sink.Name(), err)
		}
	}
	return nil
}

// Lost returns, per sink, the records dropped by a full queue or left
// undelivered by Close.
func (t *Trail) Lost() map[string]int64 {
	m := map[string]int64{}
	for _, d := range t.sinks {
		m[d.sink.Name()] = d.lost.Load()
	}
	return m
}

// Close stops taking records, delivers what is queued until ctx is done,
// then gives up on the rest (counted in Lost, and in the error) and closes
// the sinks.
func (t *Trail) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, d := range t.sinks {
		close(d.q)
	}
	t.mu.Unlock()
	var errs []error
	for _, d := range t.sinks {
		select {
		case <-d.done:
		case <-ctx.Done():
			d.cancel()
			<-d.done
		}
		d.cancel()
		// What was still queued when the delivery goroutine gave up.
		for range d.q {
			d.lost.Add(1)
		}
		if n := d.lost.Load(); n > 0 {
			errs = append(errs, fmt.Errorf("audit sink %s: %d records lost", d.sink.Name(), n))
		}
		if err := d.sink.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit sink %s: close: %w", d.sink.Name(), err))
		}
	}
	return errors.Join(errs...)
}
