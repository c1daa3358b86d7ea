package filter

import "context"

// Pacer hands out bandwidth: Wait blocks until n bytes may pass
// (policy.Throttle is one).
type Pacer interface {
	Wait(ctx context.Context, n int) error
}

// Throttle is the bandwidth filter: each Write waits for its share before
// the bytes leave. It never vetoes. An error (ctx done) cuts the transfer.
type Throttle struct {
	ctx context.Context
	p   Pacer
}

// NewThrottle paces a transfer by p until ctx is done.
func NewThrottle(ctx context.Context, p Pacer) *Throttle { return &Throttle{ctx: ctx, p: p} }

// Write waits until len(p) bytes may pass.
func (t *Throttle) Write(p []byte) error { return t.p.Wait(t.ctx, len(p)) }

// Finish accepts.
func (t *Throttle) Finish(context.Context) (Verdict, error) { return Verdict{}, nil }
