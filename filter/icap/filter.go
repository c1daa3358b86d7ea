package icap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
)

// queueDepth bounds the buffers waiting between Write and the ICAP
// connection: when the scanner is slower, Write waits (the transfer is
// paced), the transfer is never held whole.
const queueDepth = 4

// transferIdle is how long a scan waits for the transfer's next bytes
// before it gives up: longer than the gateway's own idle limit on data
// connections (timeouts.data_idle, 2m by default), which cuts a stalled
// transfer first (the session then Closes its filters).
const transferIdle = 5 * time.Minute

// The FTP replies of a veto.
const (
	codeBlocked     = 550 // RFC 959: requested action not taken
	codeUnavailable = 451 // RFC 959: local error in processing
)

var (
	errAborted = errors.New("icap: scan abandoned")
	errClosed  = fmt.Errorf("%w: the transfer ended (Close)", errAborted)
)

// Wants reports whether the configuration scans meta's transfer.
func (c *Client) Wants(meta filter.Meta) bool {
	switch c.cfg.Directions {
	case Uploads:
		return meta.Direction == filter.Upload
	case Downloads:
		return meta.Direction == filter.Download
	}
	return true
}

// Filters is the hook for proxy.Config.Filters: the scan of meta's
// transfer, or none when Directions leaves it out.
func (c *Client) Filters(meta filter.Meta) []filter.Filter {
	if !c.Wants(meta) {
		return nil
	}
	return []filter.Filter{c.NewFilter(meta)}
}

// Filter scans one transfer as it streams: Write hands each buffer to the
// scan's goroutine, which sends it to the ICAP server at once; Finish ends
// the body and waits for the verdict.
type Filter struct {
	c      *Client
	meta   filter.Meta
	ch     chan []byte
	done   chan struct{} // closed when the scan ends; report is then set
	ctx    context.Context
	cancel context.CancelCauseFunc
	report Report
	ref    string // the scan's reference (Report.Ref)

	started  bool
	n        int64
	decided  bool // Write stopped feeding the scan: pass the rest
	final    filter.Verdict
	why      error // the reason of a veto made in Write, for the log
	finished bool
	once     sync.Once
}

// NewFilter returns the scan of one transfer. A transfer cut before
// Finish should be Closed (the session does: filter.Chain.Close); the
// scan also gives up by itself after five minutes without data.
func (c *Client) NewFilter(meta filter.Meta) *Filter {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Filter{c: c, meta: meta, ref: newRef(), ch: make(chan []byte, queueDepth), done: make(chan struct{}), ctx: ctx, cancel: cancel}
}

func (f *Filter) start() {
	if f.started {
		return
	}
	f.started = true
	go f.run()
}

// run is the scan's goroutine.
func (f *Filter) run() {
	defer close(f.done)
	src := &chanReader{ch: f.ch, ctx: f.ctx, idle: max(transferIdle, f.c.cfg.timeout())}
	f.report = f.c.scan(f.ctx, f.meta, src, f.ref)
}

// Write passes p on to the scan. It returns a *filter.VetoError when the
// transfer is decided already: the scanner blocked it on what it saw, it
// failed and on_error is block, or the transfer passed max_size and the
// action is block.
func (f *Filter) Write(p []byte) error {
	if f.decided {
		return f.vetoErr()
	}
	if !f.started && f.c.cfg.Partial == PartialBlock && filter.Partial(f.meta) {
		return f.refusePartial()
	}
	f.start()
	f.n += int64(len(p))
	if f.n > f.c.cfg.maxSize() {
		f.cancel(ErrOverMaxSize)
		f.decided = true
		f.final = f.tooLarge()
		f.why = fmt.Errorf("%w: more than %d bytes", ErrOverMaxSize, f.c.cfg.maxSize())
		return f.vetoErr()
	}
	select {
	case <-f.done:
		return f.settle()
	default:
	}
	b := make([]byte, len(p))
	copy(b, p)
	t := time.NewTimer(f.c.cfg.timeout())
	defer t.Stop()
	select {
	case f.ch <- b:
		return nil
	case <-f.done:
		return f.settle()
	case <-t.C:
		// The scan stopped taking the bytes.
		f.cancel(fmt.Errorf("%w: the scan took no data for %v", errAborted, f.c.cfg.timeout()))
		<-f.done
		return f.settle()
	}
}

// refusePartial vetoes a resumed or appended transfer at its first byte,
// before any scan: nothing of it reaches the other side.
func (f *Filter) refusePartial() error {
	f.decided = true
	f.final = filter.Verdict{Veto: true, Code: codeBlocked,
		Text: fmt.Sprintf("Transfer blocked: a resumed or appended transfer cannot be inspected (ref %s).", f.ref)}
	f.why = filter.ErrPartialTransfer
	f.report = Report{Ref: f.ref, Session: f.meta.Session, User: f.meta.User, Verb: f.meta.Verb, Offset: f.meta.Offset,
		Direction: f.meta.Direction, Path: f.meta.Path, Outcome: Blocked, Threat: "resumed or appended transfer",
		Preview: -1, Err: filter.ErrPartialTransfer}
	if f.c.cfg.Hooks.Done != nil {
		f.c.cfg.Hooks.Done(f.report)
	}
	return f.vetoErr()
}

// settle decides the transfer once the scan ended before its data did.
// (f.report is read only once f.done is closed.)
func (f *Filter) settle() error {
	f.decided = true
	f.final = f.verdictOf(f.report)
	f.why = f.report.Err
	if f.why == nil {
		f.why = fmt.Errorf("icap: %s: %s", f.report.Outcome, f.report.Threat)
	}
	return f.vetoErr()
}

// vetoErr is Write's answer once the transfer is decided.
func (f *Filter) vetoErr() error {
	if !f.final.Veto {
		return nil
	}
	return &filter.VetoError{Verdict: f.final, Err: f.why}
}

// Finish ends the body and waits for the verdict (at most about twice
// Config.Timeout, or until ctx ends).
func (f *Filter) Finish(ctx context.Context) (filter.Verdict, error) {
	if f.finished || f.decided {
		f.finished = true
		f.Close()
		return f.final, nil
	}
	f.finished = true
	if f.c.cfg.Partial == PartialBlock && filter.Partial(f.meta) {
		return filter.Verdict{}, nil // no byte passed: nothing was added or sent
	}
	f.start()
	f.closeCh()
	t := time.NewTimer(2*f.c.cfg.timeout() + time.Second)
	defer t.Stop()
	select {
	case <-f.done:
	case <-ctx.Done():
		f.cancel(fmt.Errorf("%w: %w", errAborted, context.Cause(ctx)))
		<-f.done
	case <-t.C:
		f.cancel(fmt.Errorf("%w: no verdict within %v", errAborted, 2*f.c.cfg.timeout()+time.Second))
		<-f.done
	}
	f.cancel(errAborted)
	f.final = f.verdictOf(f.report)
	return f.final, nil
}

// Close abandons a scan whose transfer was cut: its connection closes
// and its goroutine ends. Safe to call more than once, after Finish, and
// while a Write runs (it only cancels; Write then returns the failure).
func (f *Filter) Close() error {
	f.cancel(errClosed)
	return nil
}

func (f *Filter) closeCh() {
	f.once.Do(func() { close(f.ch) })
}

// Report is the scan's result, once Finish returned (or Write vetoed).
func (f *Filter) Report() Report {
	if !f.started {
		if f.decided {
			return f.report // refusePartial
		}
		return Report{}
	}
	select {
	case <-f.done:
		return f.report
	default:
		return Report{}
	}
}

// verdictOf maps a scan's report to the transfer's verdict.
func (f *Filter) verdictOf(r Report) filter.Verdict {
	switch r.Outcome {
	case Blocked:
		return filter.Verdict{Veto: true, Code: codeBlocked,
			Text: fmt.Sprintf("Transfer blocked: %s (ref %s).", r.Threat, r.Ref)}
	case Failed:
		if f.c.cfg.onError() == Allow {
			return filter.Verdict{}
		}
		return filter.Verdict{Veto: true, Code: codeUnavailable,
			Text: fmt.Sprintf("Transfer blocked: the content scanner is unavailable (ref %s).", r.Ref)}
	case Skipped:
		return f.tooLarge()
	}
	return filter.Verdict{}
}

func (f *Filter) tooLarge() filter.Verdict {
	if f.c.cfg.overMaxSize() == Allow {
		return filter.Verdict{}
	}
	return filter.Verdict{Veto: true, Code: codeBlocked,
		Text: fmt.Sprintf("Transfer blocked: larger than the content inspection limit of %d bytes (ref %s).", f.c.cfg.maxSize(), f.ref)}
}

// chanReader reads the buffers Write queued; it gives up when the scan is
// abandoned or no buffer comes for idle.
type chanReader struct {
	ch   <-chan []byte
	ctx  context.Context
	idle time.Duration
	cur  []byte
}

func (r *chanReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		t := time.NewTimer(r.idle)
		select {
		case b, ok := <-r.ch:
			t.Stop()
			if !ok {
				return 0, io.EOF
			}
			r.cur = b
		case <-r.ctx.Done():
			t.Stop()
			return 0, context.Cause(r.ctx)
		case <-t.C:
			return 0, fmt.Errorf("icap: no data from the transfer for %v", r.idle)
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}
