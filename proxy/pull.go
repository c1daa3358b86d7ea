package proxy

import (
	"context"
	"net"
	"sync"
	"time"
)

// result is what a reader goroutine hands back.
type result[T any] struct {
	v   T
	err error
}

// puller runs reads in goroutines of their own, one at a time and only on
// request, so that the session goroutine can wait for a line together with
// other events (a transfer's end, ABOR, shutdown) without giving a reader
// the connection for good: between requests nothing reads, which is what
// lets the session swap a connection to TLS after AUTH. No goroutine waits
// between requests: an idle session costs no reader it does not use (the
// backend's, say, while the client thinks).
type puller[T any] struct {
	wg   *sync.WaitGroup // counts the read in progress
	res  chan result[T]
	busy bool // a request is out and its result not yet taken
}

func newPuller[T any](wg *sync.WaitGroup) *puller[T] {
	return &puller[T]{wg: wg, res: make(chan result[T], 1)}
}

// want starts a read unless one is already out. Its result arrives on res;
// res holds one, so the reader never waits for the taker.
func (p *puller[T]) want(read func() (T, error)) {
	if p.busy {
		return
	}
	p.busy = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		v, err := read()
		p.res <- result[T]{v, err}
	}()
}

// got must be called with every result taken from res.
func (p *puller[T]) got() { p.busy = false }

// aLongTimeAgo is a read deadline in the past: a blocked read returns.
var aLongTimeAgo = time.Unix(1, 0)

// readNow runs read in the calling goroutine, bounded by timeout and by
// ctx, both carried by conn's read deadline: when ctx ends, the deadline
// moves to the past and the read returns os.ErrDeadlineExceeded (the
// caller tells the two apart by ctx.Err()). The deadline is cleared before
// readNow returns, so that it cannot cut a later read. This is the path of
// a session that waits for nothing but this one line: no goroutine hands
// the line over, which in the sessions-per-second profile was a thread
// wake-up per command and per reply.
func readNow[T any](ctx context.Context, conn net.Conn, timeout time.Duration, read func() (T, error)) (T, error) {
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = conn.SetReadDeadline(aLongTimeAgo)
		close(fired)
	})
	v, err := read()
	if !stop() {
		<-fired // the past deadline it set must be gone before ours is cleared
	}
	_ = conn.SetReadDeadline(time.Time{})
	return v, err
}
