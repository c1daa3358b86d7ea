package policy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"
)

func TestBandwidthLimiters(t *testing.T) {
	if (Limits{}).NewGlobalLimiter() != nil || (Limits{}).NewSessionLimiter() != nil {
		t.Fatal("limiter for unlimited bandwidth")
	}
	if NewThrottle(nil, nil) != nil {
		t.Fatal("throttle without limiters")
	}
	for _, tc := range []struct {
		bw    int64
		burst int
	}{
		{1 << 10, 16 << 10},
		{256 << 10, 32 << 10},
		{1 << 30, 1 << 20},
	} {
		l := Limits{SessionBandwidth: tc.bw, TotalBandwidth: tc.bw}
		for _, lim := range []*rate.Limiter{l.NewSessionLimiter(), l.NewGlobalLimiter()} {
			if float64(lim.Limit()) != float64(tc.bw) || lim.Burst() != tc.burst {
				t.Errorf("%d B/s: limit %v burst %d, want burst %d", tc.bw, lim.Limit(), lim.Burst(), tc.burst)
			}
		}
	}
	var w bytes.Buffer
	if ThrottledWriter(context.Background(), &w, nil) != io.Writer(&w) {
		t.Fatal("a nil throttle must leave the writer as it is")
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// countingWriter records the largest single write.
type countingWriter struct {
	bytes.Buffer
	largest int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.largest = max(c.largest, len(p))
	return c.Buffer.Write(p)
}

// Test1MiBAt256KiBs copies 1 MiB through a 256 KiB/s session limiter in
// fake time: it takes (1 MiB - one 32 KiB burst) / 256 KiB/s = 3.875 s, the
// data arrives unchanged, and no write is larger than the burst.
func Test1MiBAt256KiBs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := randomBytes(t, 1<<20)
		th := NewThrottle(Limits{SessionBandwidth: 256 << 10}.NewSessionLimiter(), nil)
		var dst countingWriter
		start := time.Now()
		// A large copy buffer, like the relay's: writes are cut by the throttle.
		n, err := io.CopyBuffer(ThrottledWriter(context.Background(), &dst, th), bytes.NewReader(src), make([]byte, 256<<10))
		elapsed := time.Since(start)
		if err != nil || n != int64(len(src)) {
			t.Fatalf("copied %d, %v", n, err)
		}
		if !bytes.Equal(dst.Bytes(), src) {
			t.Fatal("data changed on the way")
		}
		if elapsed < 3800*time.Millisecond || elapsed > 4100*time.Millisecond {
			t.Fatalf("took %s, want about 3.875s", elapsed)
		}
		if dst.largest > 32<<10 {
			t.Fatalf("a write of %d bytes passed a 32 KiB burst", dst.largest)
		}
	})
}

// TestGlobalLimitIsShared runs two sessions through one global limiter: the
// pair together gets the global rate.
func TestGlobalLimitIsShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := Limits{SessionBandwidth: 1 << 20, TotalBandwidth: 256 << 10}
		global := l.NewGlobalLimiter()
		src := randomBytes(t, 512<<10)
		start := time.Now()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var dst bytes.Buffer
				w := ThrottledWriter(context.Background(), &dst, NewThrottle(l.NewSessionLimiter(), global))
				if _, err := w.Write(src); err != nil || !bytes.Equal(dst.Bytes(), src) {
					t.Errorf("write: %v", err)
				}
			}()
		}
		wg.Wait()
		if elapsed := time.Since(start); elapsed < 3800*time.Millisecond || elapsed > 4100*time.Millisecond {
			t.Fatalf("two sessions of 512 KiB under 256 KiB/s in total took %s, want about 3.875s", elapsed)
		}
	})
}

func TestThrottleCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThrottle(nil, Limits{TotalBandwidth: 16 << 10}.NewGlobalLimiter())
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		var dst bytes.Buffer
		n, err := ThrottledWriter(ctx, &dst, th).Write(make([]byte, 1<<20))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		// The burst at once, then one 16 KiB piece a second.
		if n != 32<<10 || dst.Len() != n {
			t.Fatalf("wrote %d (%d arrived) before the cancel, want 32 KiB", n, dst.Len())
		}
		if err := th.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after cancel: %v", err)
		}
		var nilT *Throttle
		if err := nilT.Wait(ctx, 1<<30); err != nil {
			t.Fatalf("nil throttle: %v", err)
		}
	})
}

func TestThrottleWaitSplits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := NewThrottle(rate.NewLimiter(1000, 100), rate.NewLimiter(rate.Inf, 0))
		start := time.Now()
		if err := th.Wait(context.Background(), 1100); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Fatalf("1100 tokens at 1000/s with a 100 burst took %s", elapsed)
		}
	})
}

// TestThrottleRealTime measures real time, with tolerance: 256 KiB through
// 512 KiB/s with a 64 KiB burst takes 0.375 s.
func TestThrottleRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("measures real time")
	}
	src := randomBytes(t, 256<<10)
	th := NewThrottle(Limits{SessionBandwidth: 512 << 10}.NewSessionLimiter(), nil)
	var dst bytes.Buffer
	start := time.Now()
	if _, err := io.Copy(ThrottledWriter(context.Background(), &dst, th), bytes.NewReader(src)); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if elapsed < 330*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("took %s, want about 375ms", elapsed)
	}
	if !bytes.Equal(dst.Bytes(), src) {
		t.Fatal("data changed on the way")
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestThrottledWriterShortWrite(t *testing.T) {
	th := NewThrottle(rate.NewLimiter(rate.Inf, 0), nil)
	n, err := ThrottledWriter(context.Background(), shortWriter{}, th).Write(make([]byte, 10))
	if n != 5 || !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("Write = %d, %v", n, err)
	}
}
