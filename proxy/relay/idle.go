package relay

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Why a relay stopped before the end of its source.
var (
	ErrDataIdle  = errors.New("no data moved for timeouts.data_idle")
	ErrTruncated = errors.New("the data connection ended without TLS close_notify: the data is truncated")
)

// relayPark is how long a relay may be blocked before it hands its idle
// buffers back to their pools (at most a quarter of the idle timeout).
const relayPark = 2 * time.Second

// idleWatch enforces timeouts.data_idle in a relay: when no byte moved
// either way for idle (the source sent nothing, or the destination took
// nothing), the relay ends with ErrDataIdle. It works with deadlines on the
// relay's own connections, the source's read deadline and the
// destination's write deadline, moved forward as bytes move: no timer and
// no goroutine of its own. The deadline is kept at most park ahead and moved
// only once less than park/2 is left, so that a flowing transfer sets it
// about once a second, and a relay blocked for park learns it and can give
// its buffers back (parked) before waiting on, up to idle after the last
// byte.
//
// A nil *idleWatch (no idle timeout) does nothing.
type idleWatch struct {
	idle, park time.Duration
	src, dst   net.Conn
	last       time.Time // bytes last moved (at first: when the relay started)
	until      time.Time // the deadline set on src (read) and dst (write)
	parked     bool
}

func newIdleWatch(idle time.Duration, dst, src net.Conn) *idleWatch {
	if idle <= 0 {
		return nil
	}
	return &idleWatch{idle: idle, park: min(relayPark, idle/4), src: src, dst: dst, last: time.Now()}
}

// step runs before each read or write; moved: bytes moved since the last
// step.
func (w *idleWatch) step(moved bool) {
	if w == nil {
		return
	}
	now := time.Now()
	if moved {
		w.last = now
		if w.parked {
			w.parked = false
			w.arm(now)
			return
		}
	}
	if w.until.Sub(now) <= w.park/2 {
		w.arm(now)
	}
}

func (w *idleWatch) arm(now time.Time) { w.set(earlier(now.Add(w.park), w.last.Add(w.idle))) }

func (w *idleWatch) set(t time.Time) {
	w.until = t
	_ = w.src.SetReadDeadline(t)
	_ = w.dst.SetWriteDeadline(t)
}

// after takes a read's or write's error; moved: that call moved bytes
// before it failed. It returns nil when the error was one of the watch's
// deadlines and bytes moved less than idle ago: the call may be made again.
// park reports that the relay has now been blocked for park: it may give
// its idle buffers back, and the deadline is the idle timeout's own.
// Without a watch, or for any other error, the error comes back as it is.
func (w *idleWatch) after(err error, moved bool) (park bool, _ error) {
	if w == nil || !isTimeout(err) {
		return false, err
	}
	now := time.Now()
	if moved {
		w.last = now
		w.parked = false
	}
	quiet := now.Sub(w.last)
	switch {
	case quiet >= w.idle:
		return false, w.idleErr()
	case quiet >= w.park && !w.parked:
		w.parked = true
		w.set(w.last.Add(w.idle))
		return true, nil
	}
	w.arm(now)
	return false, nil
}

func (w *idleWatch) idleErr() error { return fmt.Errorf("%w (%s)", ErrDataIdle, w.idle) }

// stepWriter steps the idle watch before each write to the relay's
// destination: under a throttle, between its waits.
type stepWriter struct {
	c net.Conn
	w *idleWatch
}

func (s stepWriter) Write(p []byte) (int, error) {
	s.w.step(true)
	return s.c.Write(p)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
