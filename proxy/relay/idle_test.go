package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// gwTLS puts TLS on a loopback connection the way the gateway does: its
// side (gw) over a recordConn, as the server when gwServer (a client's data
// connection) or as the client (a backend's).
func gwTLS(t testing.TB, gw, peer net.Conn, gwServer bool) (*tls.Conn, *tls.Conn) {
	t.Helper()
	srv, cli := benchTLSConfigs(t)
	var g, p *tls.Conn
	if gwServer {
		g, p = tls.Server(NewRecordConn(gw), srv), tls.Client(peer, cli)
	} else {
		g, p = tls.Client(NewRecordConn(gw), cli), tls.Server(peer, srv)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Handshake() }()
	if err := g.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.NetConn().Close(); _ = p.NetConn().Close() })
	return g, p
}

// runRelay runs relay in the background.
func runRelay(dst, src net.Conn, idle time.Duration) <-chan Result {
	return runRelayOpts(dst, src, Opts{Idle: idle})
}

func runRelayOpts(dst, src net.Conn, o Opts) <-chan Result {
	done := make(chan Result, 1)
	go func() { done <- Run(dst, src, o) }()
	return done
}

func waitRelay(t *testing.T, done <-chan Result, within time.Duration) Result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(within):
		t.Fatalf("the relay still runs after %s", within)
		return Result{}
	}
}

// feed writes chunks to c until it fails.
func feed(c net.Conn) {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

// readEnd reads c to its end and returns how it ended: nil for a clean
// end (io.EOF), otherwise the error.
func readEnd(t *testing.T, c net.Conn) error {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		return nil
	}
	return err
}

// TestRelayIdleDownloadStalledClient: a client that stops reading a download
// (TLS) is cut after idle, and its connection is reset.
func TestRelayIdleDownloadStalledClient(t *testing.T) {
	backend, backendGW := tcpPair(t)
	clientGW, clientRaw := tcpPair(t)
	gw, _ := gwTLS(t, clientGW, clientRaw, true)
	go feed(backend)
	start := time.Now()
	r := waitRelay(t, runRelay(gw, backendGW, 400*time.Millisecond), 10*time.Second)
	if !errors.Is(r.Err, ErrDataIdle) {
		t.Fatalf("relay ended with %v after %s, want %v", r.Err, time.Since(start), ErrDataIdle)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("cut after %s, before the idle timeout", d)
	}
	if r.N == 0 {
		t.Fatal("nothing was relayed before the stall")
	}
	// The raw socket was reset: the client does not see close_notify.
	_ = clientRaw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, clientRaw); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the client's data connection ended with %v, want a reset", err)
	}
}

// TestRelayIdleUploadSilentClient: a client that stops sending an upload
// (TLS) is cut after idle, and the backend's connection is reset, not
// closed: a backend takes a FIN for the end of the file.
func TestRelayIdleUploadSilentClient(t *testing.T) {
	clientGW, clientRaw := tcpPair(t)
	backendGW, backend := tcpPair(t)
	gw, client := gwTLS(t, clientGW, clientRaw, true)
	if _, err := client.Write(bytes.Repeat([]byte("x"), 100<<10)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	done := runRelay(backendGW, gw, 400*time.Millisecond)
	if err := readEnd(t, backend); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the backend's data connection ended with %v, want a reset", err)
	}
	r := waitRelay(t, done, 10*time.Second)
	if !errors.Is(r.Err, ErrDataIdle) || r.N != 100<<10 {
		t.Fatalf("relay: %d bytes, %v; want %d, %v", r.N, r.Err, 100<<10, ErrDataIdle)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("cut after %s, before the idle timeout", d)
	}
}

// TestRelayIdlePlain: the splice path is cut too, for a silent source and
// for a destination that does not read.
func TestRelayIdlePlain(t *testing.T) {
	t.Run("silent-source", func(t *testing.T) {
		_, srcGW := tcpPair(t)
		dstGW, dst := tcpPair(t)
		r := waitRelay(t, runRelay(dstGW, srcGW, 400*time.Millisecond), 10*time.Second)
		if !errors.Is(r.Err, ErrDataIdle) {
			t.Fatalf("relay: %v, want %v", r.Err, ErrDataIdle)
		}
		if err := readEnd(t, dst); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the destination ended with %v, want a reset", err)
		}
	})
	t.Run("stalled-destination", func(t *testing.T) {
		src, srcGW := tcpPair(t)
		dstGW, _ := tcpPair(t)
		go feed(src)
		r := waitRelay(t, runRelay(dstGW, srcGW, 400*time.Millisecond), 10*time.Second)
		if !errors.Is(r.Err, ErrDataIdle) {
			t.Fatalf("relay: %v, want %v", r.Err, ErrDataIdle)
		}
	})
}

// TestRelayIdleSlowFlowGoesOn: bytes that keep coming, slowly, with pauses
// shorter than idle but longer than the relay's park time, are not cut,
// and arrive whole (TLS on both sides, and plain).
func TestRelayIdleSlowFlowGoesOn(t *testing.T) {
	const idle = 600 * time.Millisecond
	for _, tlsOn := range []bool{true, false} {
		name := "plain"
		if tlsOn {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			srcPeerRaw, srcGWRaw := tcpPair(t)
			dstGWRaw, dstPeerRaw := tcpPair(t)
			var src, srcPeer, dst, dstPeer net.Conn = srcGWRaw, srcPeerRaw, dstGWRaw, dstPeerRaw
			if tlsOn {
				src, srcPeer = gwTLS(t, srcGWRaw, srcPeerRaw, true)
				dst, dstPeer = gwTLS(t, dstGWRaw, dstPeerRaw, false)
			}
			var want []byte
			go func() {
				for i := range 5 {
					chunk := bytes.Repeat([]byte{byte(i)}, 1000*(i+1))
					_, _ = srcPeer.Write(chunk)
					time.Sleep(idle / 2)
				}
				_ = benchCloseWrite(srcPeer)
			}()
			for i := range 5 {
				want = append(want, bytes.Repeat([]byte{byte(i)}, 1000*(i+1))...)
			}
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(dstPeer); got <- b }()
			r := waitRelay(t, runRelay(dst, src, idle), 20*time.Second)
			if r.Err != nil {
				t.Fatalf("relay: %v", r.Err)
			}
			go DrainAndClose(dst, r.Gone)
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("received %d bytes, want %d", len(b), len(want))
			}
		})
	}
}

// TestRelayTruncatedTLSUpload: a client's TLS data connection that ends
// without close_notify (here between two records, where crypto/tls reports
// a plain io.EOF) is a truncated upload: the relay fails and resets the
// backend's connection instead of closing it.
func TestRelayTruncatedTLSUpload(t *testing.T) {
	clientGW, clientRaw := tcpPair(t)
	backendGW, backend := tcpPair(t)
	gw, client := gwTLS(t, clientGW, clientRaw, true)
	if _, err := client.Write(bytes.Repeat([]byte("y"), 300<<10)); err != nil {
		t.Fatal(err)
	}
	_ = clientRaw.Close() // no close_notify
	done := runRelay(backendGW, gw, 0)
	if err := readEnd(t, backend); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the backend's data connection ended with %v, want a reset", err)
	}
	if r := waitRelay(t, done, 10*time.Second); !errors.Is(r.Err, ErrTruncated) {
		t.Fatalf("relay: %v, want %v", r.Err, ErrTruncated)
	}
}

// TestRelayTruncatedTLSDownload: a backend's TLS data connection that ends
// without close_notify is a truncated download: the client's connection is
// reset, it gets no close_notify.
func TestRelayTruncatedTLSDownload(t *testing.T) {
	backendGW, backendRaw := tcpPair(t)
	clientGW, clientRaw := tcpPair(t)
	gwBackend, backend := gwTLS(t, backendGW, backendRaw, false)
	gwClient, client := gwTLS(t, clientGW, clientRaw, true)
	go func() {
		_, _ = backend.Write(bytes.Repeat([]byte("z"), 300<<10))
		_ = backendRaw.Close() // no close_notify
	}()
	done := runRelayOpts(gwClient, gwBackend, Opts{FromBackend: true})
	err := readEnd(t, client)
	if err == nil {
		t.Fatal("the client's data connection ended cleanly (close_notify) after a truncated download")
	}
	if r := waitRelay(t, done, 10*time.Second); !errors.Is(r.Err, ErrTruncated) {
		t.Fatalf("relay: %v, want %v", r.Err, ErrTruncated)
	}
}

// TestRelayCleanTLSEndIsComplete: close_notify then FIN is a complete
// transfer, not a truncated one.
func TestRelayCleanTLSEndIsComplete(t *testing.T) {
	clientGW, clientRaw := tcpPair(t)
	backendGW, backend := tcpPair(t)
	gw, client := gwTLS(t, clientGW, clientRaw, true)
	go func() {
		_, _ = client.Write(bytes.Repeat([]byte("y"), 300<<10))
		_ = client.Close()
	}()
	done := runRelay(backendGW, gw, time.Minute)
	if err := readEnd(t, backend); err != nil {
		t.Fatalf("the backend's data connection ended with %v, want a clean end", err)
	}
	_ = backend.Close()
	r := waitRelay(t, done, 10*time.Second)
	if r.Err != nil || r.N != 300<<10 {
		t.Fatalf("relay: %d bytes, %v", r.N, r.Err)
	}
	DrainAndClose(backendGW, r.Gone)
}

// TestRelayEmptyTLSWithoutCloseNotify: a TLS source that ends with a FIN
// before its first byte, without close_notify, is an empty download when it
// is the backend (pyftpdlib ends empty listings so; TCP keeps the order, so
// nothing was sent before the FIN) and a truncated upload when it is the
// client (one killed right after its handshake looks the same).
func TestRelayEmptyTLSWithoutCloseNotify(t *testing.T) {
	for _, fromBackend := range []bool{true, false} {
		srcGWRaw, srcPeerRaw := tcpPair(t)
		dstGW, dstPeer := tcpPair(t)
		src, _ := gwTLS(t, srcGWRaw, srcPeerRaw, !fromBackend)
		_ = srcPeerRaw.CloseWrite() // no close_notify
		done := runRelayOpts(dstGW, src, Opts{FromBackend: fromBackend})
		err := readEnd(t, dstPeer)
		_ = dstPeer.Close()
		r := waitRelay(t, done, 10*time.Second)
		if fromBackend {
			if err != nil || r.Err != nil {
				t.Errorf("empty download: relay %v, destination ended with %v; want a clean end", r.Err, err)
			}
			DrainAndClose(dstGW, r.Gone)
		} else if !errors.Is(r.Err, ErrTruncated) || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("empty upload: relay %v, destination ended with %v; want %v and a reset", r.Err, err, ErrTruncated)
		}
	}
}
