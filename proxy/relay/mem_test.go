package relay

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestRelayStalledMemory measures the heap a stalled transfer holds, the
// in-process peers' TLS state included, for stalledN transfers with TLS on
// both sides as the gateway runs them (recordConn under tls.Conn): a
// download whose client stopped reading, an upload whose client stopped
// sending. Without an idle watch (data_idle unset, as before) the relay
// keeps its 512 KiB copy buffer and its recordConns' large buffers for as
// long as it is blocked; with one, it gives them back once parked. The
// figures are logged (go test -v -run StalledMemory ./proxy/) and bounded
// loosely.
func TestRelayStalledMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the relays to park")
	}
	const stalledN = 16
	// stalledIdle parks a relay after a second (idle/4), within two park
	// times of the stall; the measure comes before the cut at 4s.
	const stalledIdle = 4 * time.Second
	for _, tc := range []struct {
		name   string
		upload bool
		idle   time.Duration
		limit  int64 // per transfer, with an idle watch
	}{
		{"download/no-idle", false, 0, 0},
		{"download/idle", false, stalledIdle, 1 << 20},
		{"upload/no-idle", true, 0, 0},
		{"upload/idle", true, stalledIdle, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chunk := bytes.Repeat([]byte("m"), 64<<10)
			base := heapInUse()
			var relays []<-chan Result
			var conns []net.Conn
			for range stalledN {
				srcGWRaw, srcPeerRaw := tcpPair(t)
				dstGWRaw, dstPeerRaw := tcpPair(t)
				// The client's side is the TLS server, the backend's the client.
				src, srcPeer := gwTLS(t, srcGWRaw, srcPeerRaw, tc.upload)
				dst, _ := gwTLS(t, dstGWRaw, dstPeerRaw, !tc.upload)
				conns = append(conns, srcGWRaw, dstGWRaw, srcPeerRaw, dstPeerRaw)
				if tc.upload {
					_, _ = srcPeer.Write(chunk[:32<<10]) // then nothing
				} else {
					go func() { // until the relay stalls, then blocked
						for {
							if _, err := srcPeer.Write(chunk); err != nil {
								return
							}
						}
					}()
				}
				done := make(chan Result, 1)
				go func() { done <- Run(dst, src, Opts{Idle: tc.idle}) }()
				relays = append(relays, done)
			}
			wait := time.Second // stalled
			if tc.idle > 0 {
				wait += 5 * (tc.idle / 8) // and parked: 2.5 park times, before the cut
			}
			time.Sleep(wait)
			per := (heapInUse() - base) / stalledN
			t.Logf("%s: %d KiB of heap per stalled transfer (%d transfers)", tc.name, per>>10, stalledN)
			for _, c := range conns {
				_ = c.Close()
			}
			for _, r := range relays {
				<-r
			}
			if tc.limit > 0 && per > tc.limit {
				t.Errorf("a stalled transfer holds %d KiB, want at most %d", per>>10, tc.limit>>10)
			}
		})
	}
}

// heapInUse is the live heap after the pools are emptied (two collections).
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
