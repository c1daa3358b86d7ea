package icap_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
)

// feedAsync writes total bytes in 64 KiB buffers on a goroutine, counting
// what Write accepted; the result is Write's first error, or nil.
func feedAsync(f filter.Filter, total int64, accepted *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for n := int64(0); n < total; n += int64(len(buf)) {
			if err := f.Write(buf); err != nil {
				done <- err
				return
			}
			accepted.Add(int64(len(buf)))
		}
		done <- nil
	}()
	return done
}

// A scanner slower than the transfer paces it: while the server reads
// nothing, Write stops taking bytes after the queue and the socket
// buffers (far less than the file); when it reads again the transfer
// completes and the verdict comes.
func TestFakeSlowScannerPaces(t *testing.T) {
	const total = 64 << 20
	resume := make(chan struct{})
	srv := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("") != nil {
			return
		}
		<-resume
		r, err := c.readReq()
		if err != nil {
			return
		}
		if int64(len(r.Body)) == total {
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
		}
	})
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 10 * time.Second, MaxSize: 1 << 30})
	f := c.NewFilter(meta)
	var accepted atomic.Int64
	done := feedAsync(f, total, &accepted)
	time.Sleep(time.Second)
	held := accepted.Load()
	if held >= total/4 {
		t.Fatalf("Write took %d of %d bytes while the scanner read nothing: not paced", held, total)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("Write after the scanner resumed: %v", err)
	}
	v, err := f.Finish(context.Background())
	if err != nil || v.Veto {
		t.Fatalf("verdict %+v %v; report %+v", v, err, f.Report())
	}
	t.Logf("held while paused: %d bytes", held)
}

// A scanner that stops reading for good: Write gives up after the
// timeout; on_error block cuts the transfer with 451.
func TestFakeScannerStopsReading(t *testing.T) {
	stop := make(chan struct{})
	srv := fakeServer(t, func(c *fakeConn) {
		if c.answerOptions("") != nil {
			return
		}
		<-stop
	})
	t.Cleanup(func() { close(stop) }) // before the server's cleanup
	c := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 500 * time.Millisecond, MaxSize: 1 << 30})
	f := c.NewFilter(meta)
	var accepted atomic.Int64
	start := time.Now()
	err := <-feedAsync(f, 1<<30, &accepted)
	v, ok := filter.VetoOf(err)
	if !ok || v.Code != 451 {
		t.Fatalf("Write: %v, want a 451 veto", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the veto took %v", took)
	}
	if rep := f.Report(); rep.Outcome != icap.Failed || rep.Err == nil {
		t.Fatalf("report %+v", rep)
	}
}
