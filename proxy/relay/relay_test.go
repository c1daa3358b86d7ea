package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/internal/testnet"
	"github.com/ftpsgate/ftpsgate/policy"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) { return testnet.TCPPair(t) }

// TestRelayUploadToTLSBackendKeepsTheTail: an upload to a TLS 1.3 server
// that sends its session tickets after the handshake (as OpenSSL does) and
// reads only once the relay is done arrives whole, and the relay half-closes
// (close_notify, FIN) instead of closing. Closing with the tickets unread
// made vsftpd truncate uploads (the interop test TestGatewayMatrix is the
// one that reproduces that against the real vsftpd; crypto/tls as the
// server here does not lose data on a reset).
func TestRelayUploadToTLSBackendKeepsTheTail(t *testing.T) {
	cert, err := policy.GenerateSelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Small enough to sit in the socket buffers: the relay is done writing
	// before the server reads a byte, so the whole tail is in flight.
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	want := sha256.Sum256(payload)

	// The client's side: plain.
	clientApp, clientGW := tcpPair(t)
	// The backend's side: TLS 1.3, a server that is slow to read.
	gwBackend, backendRaw := tcpPair(t)
	// Asking for a client certificate makes crypto/tls send its session
	// tickets after the client's Finished, as OpenSSL (vsftpd) always does:
	// they then wait, unread, in the relay's socket.
	server := tls.Server(backendRaw, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert})
	got := make(chan [32]byte, 1)
	relayed := make(chan struct{})
	go func() {
		if err := server.Handshake(); err != nil {
			got <- [32]byte{}
			return
		}
		<-relayed // the relay has written everything and closed its side
		h := sha256.New()
		_, _ = io.Copy(h, server)
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		got <- sum
		server.Close()
	}()
	backend := tls.Client(gwBackend, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := backend.Handshake(); err != nil {
		t.Fatal(err)
	}

	go func() {
		_, _ = clientApp.Write(payload)
		_ = clientApp.CloseWrite()
	}()
	r := Run(backend, clientGW, Opts{})
	close(relayed)
	if r.Err != nil || r.N != int64(len(payload)) {
		t.Fatalf("relay: %d bytes, %v", r.N, r.Err)
	}
	go DrainAndClose(backend, r.Gone)
	select {
	case sum := <-got:
		if sum != want {
			t.Fatal("the backend did not receive the whole upload")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the backend never finished reading")
	}
}

// TestRelayPlainSplice: plain to plain relays byte for byte and half-closes.
func TestRelayPlainSplice(t *testing.T) {
	srcApp, srcGW := tcpPair(t)
	dstGW, dstApp := tcpPair(t)
	payload := bytes.Repeat([]byte{7}, 3<<20+5)
	go func() { _, _ = srcApp.Write(payload); _ = srcApp.CloseWrite() }()
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(dstApp); done <- b }()
	r := Run(dstGW, srcGW, Opts{})
	if r.Err != nil || r.N != int64(len(payload)) {
		t.Fatalf("relay: %d, %v", r.N, r.Err)
	}
	if b := <-done; !bytes.Equal(b, payload) {
		t.Fatalf("received %d bytes, want %d", len(b), len(payload))
	}
	dstApp.Close()
	DrainAndClose(dstGW, r.Gone)
}

// TestRelayPlainFilter: with a filter, a plain-to-plain relay (no splice)
// shows the filter every byte, in order, and still relays them all.
func TestRelayPlainFilter(t *testing.T) {
	srcApp, srcGW := tcpPair(t)
	dstGW, dstApp := tcpPair(t)
	payload := make([]byte, 3<<20+5)
	for i := range payload {
		payload[i] = byte(i * 7 / 3)
	}
	go func() { _, _ = srcApp.Write(payload); _ = srcApp.CloseWrite() }()
	done := make(chan []byte, 1)
	go func() { b, _ := io.ReadAll(dstApp); done <- b }()
	h := filter.NewSHA256()
	r := Run(dstGW, srcGW, Opts{Idle: time.Minute, Filter: filter.Chain{h}})
	if r.Err != nil || r.N != int64(len(payload)) {
		t.Fatalf("relay: %d, %v", r.N, r.Err)
	}
	if b := <-done; !bytes.Equal(b, payload) {
		t.Fatalf("received %d bytes, want %d", len(b), len(payload))
	}
	if want := sha256.Sum256(payload); h.Sum() != hex.EncodeToString(want[:]) || h.Size() != int64(len(payload)) {
		t.Fatalf("filter saw %d bytes, sha256 %s", h.Size(), h.Sum())
	}
	dstApp.Close()
	DrainAndClose(dstGW, r.Gone)
}

// TestRecordConnReadGrows: the read buffer starts small, grows once a read
// fills it, and hands every byte over in order, with the error after the
// data.
func TestRecordConnReadGrows(t *testing.T) {
	want := make([]byte, 3*relayBufSize+12345)
	for i := range want {
		want[i] = byte(i * 7)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() {
		_, _ = b.Write(want[:100]) // a small first read
		_, _ = b.Write(want[100:])
		b.Close()
	}()
	rc := NewRecordConn(a).(*recordConn)
	var got []byte
	buf := make([]byte, 5000)
	sizes := map[int]bool{}
	for {
		n, err := rc.Read(buf)
		got = append(got, buf[:n]...)
		sizes[len(rc.rbuf)] = true
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written (or not in order)", len(got), len(want))
	}
	if !sizes[recordReadStart] || !sizes[relayBufSize] {
		t.Errorf("buffer sizes seen %v: want it to start at %d and grow to %d", sizes, recordReadStart, relayBufSize)
	}
}

// brokenPipe is a destination whose writes fail while its reads still
// block: a client that closed its end, seen by the write before the
// relay's reader of dst sees it.
type brokenPipe struct{ net.Conn }

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestRelayDestinationFailureEndsTLSSourcePolitely: a download whose
// client side fails on a write (not on the reader that watches for the
// client's close) ends the backend's TLS data connection with close_notify
// and reads the rest, as when the client's close is seen first. Closed
// with the backend's data unread, the socket would reset, and ProFTPD's
// mod_tls ends the whole session when a TLS data connection dies under it
// (TestInteropMatrix's early-close cell lost the session so, now and then).
func TestRelayDestinationFailureEndsTLSSourcePolitely(t *testing.T) {
	cert, err := policy.GenerateSelfSigned(nil)
	if err != nil {
		t.Fatal(err)
	}
	gwBackend, backendRaw := tcpPair(t)
	server := tls.Server(backendRaw, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	const fileSize = 8 << 20 // far beyond the socket buffers
	wrote := make(chan error, 1)
	go func() {
		defer server.Close()
		if err := server.Handshake(); err != nil {
			wrote <- err
			return
		}
		// The server goes on sending its file whatever the peer says (as
		// an FTP server's data connection does), then says it is done.
		chunk := bytes.Repeat([]byte{'x'}, 64<<10)
		for sent := 0; sent < fileSize; sent += len(chunk) {
			if _, err := server.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	src := tls.Client(gwBackend, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err := src.Handshake(); err != nil {
		t.Fatal(err)
	}
	dstGW, dstApp := tcpPair(t)
	defer dstApp.Close()

	r := Run(brokenPipe{dstGW}, src, Opts{FromBackend: true})
	if !errors.Is(r.Err, syscall.EPIPE) || r.PeerClosed {
		t.Fatalf("relay: %+v, want the destination's EPIPE", r)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("the backend's data connection failed under it: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the backend never finished sending")
	}
}
