package proxy

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// TestReadNow: a line arrives; the timeout ends a silent read; ctx ending
// ends a blocked read at once; and no deadline is left behind to cut the
// next read.
func TestReadNow(t *testing.T) {
	local, peer := tcpPair(t)
	r := ftp.NewReader(local)

	go func() { _, _ = peer.Write([]byte("NOOP\r\n")) }()
	cmd, err := readNow(context.Background(), local, time.Second, r.ReadCommand)
	if err != nil || cmd.Verb != "NOOP" {
		t.Fatalf("readNow = %+v, %v", cmd, err)
	}

	start := time.Now()
	if _, err := readNow(context.Background(), local, 50*time.Millisecond, r.ReadCommand); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent peer: %v, want deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout of 50ms took %s", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if _, err := readNow(ctx, local, time.Hour, r.ReadCommand); !errors.Is(err, os.ErrDeadlineExceeded) || ctx.Err() == nil {
		t.Fatalf("cancelled: %v (ctx %v), want deadline", err, ctx.Err())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	// Already cancelled: returns at once, and still leaves no deadline.
	if _, err := readNow(ctx, local, time.Hour, r.ReadCommand); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cancelled before: %v, want deadline", err)
	}

	// No deadline left: a plain read waits for the line sent 100ms later.
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = peer.Write([]byte("QUIT\r\n"))
	}()
	if cmd, err := r.ReadCommand(); err != nil || cmd.Verb != "QUIT" {
		t.Fatalf("read after readNow = %+v, %v", cmd, err)
	}
}
