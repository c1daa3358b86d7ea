package policy

import (
	"context"
	"io"

	"golang.org/x/time/rate"
)

// Bandwidth limiter bursts: an eighth of a second of traffic, between one
// TLS record and 1 MiB. Writes larger than the burst are cut into pieces.
const (
	minBandwidthBurst = 16 << 10
	maxBandwidthBurst = 1 << 20
)

func bandwidthLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := min(max(bytesPerSec/8, minBandwidthBurst), maxBandwidthBurst)
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(burst))
}

// NewGlobalLimiter returns the gateway-wide bandwidth limiter (one for the
// whole process, shared by every session's Throttle), or nil when
// TotalBandwidth is unlimited.
func (l Limits) NewGlobalLimiter() *rate.Limiter { return bandwidthLimiter(l.TotalBandwidth) }

// NewSessionLimiter returns a bandwidth limiter for one session (shared by
// its transfers, both directions), or nil when SessionBandwidth is unlimited.
func (l Limits) NewSessionLimiter() *rate.Limiter { return bandwidthLimiter(l.SessionBandwidth) }

// Throttle paces a byte stream by a per-session and a global limiter.
// A nil *Throttle does not limit.
type Throttle struct {
	session, global *rate.Limiter
	chunk           int // the largest piece both limiters accept at once
}

// NewThrottle combines the limiters; either may be nil. With both nil it
// returns nil: no limit, and ThrottledWriter leaves writers untouched.
func NewThrottle(session, global *rate.Limiter) *Throttle {
	if session == nil && global == nil {
		return nil
	}
	t := &Throttle{session: session, global: global, chunk: maxBandwidthBurst}
	for _, l := range []*rate.Limiter{session, global} {
		if l != nil && l.Limit() != rate.Inf {
			t.chunk = min(t.chunk, max(l.Burst(), 1))
		}
	}
	return t
}

// Wait blocks until n bytes may pass, taking them from the session limiter
// first, then from the global one, in pieces no larger than either burst. It
// returns ctx's error (or the limiter's, when ctx's deadline would pass
// first) without waiting for the rest.
func (t *Throttle) Wait(ctx context.Context, n int) error {
	if t == nil {
		return nil
	}
	for n > 0 {
		c := min(n, t.chunk)
		if err := t.wait(ctx, c); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

func (t *Throttle) wait(ctx context.Context, n int) error {
	if t.session != nil {
		if err := t.session.WaitN(ctx, n); err != nil {
			return err
		}
	}
	if t.global != nil {
		if err := t.global.WaitN(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// ThrottledWriter returns a writer that paces writes to w through t: each
// write is cut into pieces no larger than the limiters' bursts, and each
// piece is written once t lets it pass. Nothing is buffered. With a nil t it
// returns w itself (so io.Copy can still splice). A write returns ctx's
// error, and what was written before it, once ctx is done.
func ThrottledWriter(ctx context.Context, w io.Writer, t *Throttle) io.Writer {
	if t == nil {
		return w
	}
	return &throttledWriter{ctx: ctx, w: w, t: t}
}

type throttledWriter struct {
	ctx context.Context
	w   io.Writer
	t   *Throttle
}

func (tw *throttledWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := min(len(p), tw.t.chunk)
		if err := tw.t.wait(tw.ctx, c); err != nil {
			return written, err
		}
		n, err := tw.w.Write(p[:c])
		written += n
		if err != nil {
			return written, err
		}
		if n < c {
			return written, io.ErrShortWrite
		}
		p = p[c:]
	}
	return written, nil
}
