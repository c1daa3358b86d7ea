package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
)

// The relay benchmarks run Run(dst, src, Opts{Idle: benchIdle}) over loopback TCP the way a
// transfer does: a peer writes into src, relay copies to dst, a peer reads
// dst to the end. With TLS on one side, that side's peer is a TLS client
// in this same process, so its encryption or decryption is counted too:
// the figures compare relay variants with each other, they are not the
// gateway's own throughput (test/bench measures that).
//
//	go test -run '^$' -bench Relay -benchtime 2s ./proxy/

// benchChunk is what the source peer writes at a time; a server writing a
// file does about this (vsftpd 64 KiB, Go's io.Copy 32 KiB).
const benchChunk = 64 << 10

// benchIdle is the relay's idle timeout, the default data_idle: its
// deadlines are part of the cost.
const benchIdle = 2 * time.Minute

func BenchmarkRelayPlainToPlain(b *testing.B) { benchRelay(b, false, false) }

// Download with a plain backend: backend data (plain) to the client (TLS).
func BenchmarkRelayPlainToTLS(b *testing.B) { benchRelay(b, false, true) }

// Upload with a plain backend: client data (TLS) to the backend (plain).
func BenchmarkRelayTLSToPlain(b *testing.B) { benchRelay(b, true, false) }

// FTPS on both sides (backend.tls explicit), either direction.
func BenchmarkRelayTLSToTLS(b *testing.B) { benchRelay(b, true, true) }

// The SHA-256 filter (transfers.hash) on: plain to plain leaves splice.
func BenchmarkRelayPlainToPlainSHA256(b *testing.B) { benchRelayHash(b, false, false) }

// An upload to a plain backend with the SHA-256 filter (the default).
func BenchmarkRelayTLSToPlainSHA256(b *testing.B) { benchRelayHash(b, true, false) }

// An upload to a plain backend with the SHA-256 filter and the built-in DLP
// detectors (inspect.dlp with its defaults).
func BenchmarkRelayTLSToPlainSHA256DLP(b *testing.B) {
	cfg := dlp.Defaults()
	cfg.Enabled = true
	pol, err := dlp.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchRelayOpts(b, true, false, filter.Chain{filter.NewSHA256(), pol.Filter(filter.Meta{Direction: filter.Upload})})
}

func benchRelay(b *testing.B, srcTLS, dstTLS bool) { benchRelayOpts(b, srcTLS, dstTLS, nil) }

func benchRelayHash(b *testing.B, srcTLS, dstTLS bool) {
	benchRelayOpts(b, srcTLS, dstTLS, filter.Chain{filter.NewSHA256()})
}

// benchRelay moves b.N chunks through relay. srcTLS: the relay reads TLS
// (it is the server of that connection, as for a client's upload); dstTLS:
// the relay writes TLS (the server side, as for a download to a client).
func benchRelayOpts(b *testing.B, srcTLS, dstTLS bool, f filter.Chain) {
	srvConf, cliConf := benchTLSConfigs(b)
	// src: relay reads it; its peer writes.
	src, srcPeer := benchTCPPair(b)
	dst, dstPeer := benchTCPPair(b)
	if srcTLS {
		src, srcPeer = benchHandshake(b, src, srcPeer, srvConf, cliConf)
	}
	if dstTLS {
		dst, dstPeer = benchHandshake(b, dst, dstPeer, srvConf, cliConf)
	}
	defer srcPeer.Close()
	defer dstPeer.Close()

	chunk := make([]byte, benchChunk)
	_, _ = rand.Read(chunk)
	total := int64(b.N) * benchChunk

	var wg sync.WaitGroup
	var writeErr, readErr error
	var got int64
	b.SetBytes(benchChunk)
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(2)
	go func() { // the sending peer: b.N chunks, then end of data
		defer wg.Done()
		for i := 0; i < b.N; i++ {
			if _, err := srcPeer.Write(chunk); err != nil {
				writeErr = err
				return
			}
		}
		writeErr = benchCloseWrite(srcPeer)
	}()
	go func() { // the receiving peer: everything, to EOF
		defer wg.Done()
		buf := make([]byte, 256<<10)
		got, readErr = io.CopyBuffer(io.Discard, struct{ io.Reader }{dstPeer}, buf)
	}()
	r := Run(dst, src, Opts{Idle: benchIdle, Filter: f})
	wg.Wait()
	b.StopTimer()
	_ = dst.Close()
	<-r.Gone
	if r.Err != nil || writeErr != nil || readErr != nil {
		b.Fatalf("relay: %v; writer: %v; reader: %v", r.Err, writeErr, readErr)
	}
	if r.N != total || got != total {
		b.Fatalf("relayed %d, received %d, want %d", r.N, got, total)
	}
}

// benchTCPPair returns the two ends of a loopback TCP connection.
func benchTCPPair(b testing.TB) (net.Conn, net.Conn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		b.Fatal(r.err)
	}
	return r.c, c1
}

// benchHandshake makes relaySide the TLS server and peer the TLS client.
func benchHandshake(b *testing.B, relaySide, peer net.Conn, srv, cli *tls.Config) (net.Conn, net.Conn) {
	b.Helper()
	s := tls.Server(relaySide, srv)
	c := tls.Client(peer, cli)
	errc := make(chan error, 1)
	go func() { errc <- c.Handshake() }()
	if err := s.Handshake(); err != nil {
		b.Fatal(err)
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return s, c
}

// benchCloseWrite ends what the peer sends: close_notify and FIN for TLS.
func benchCloseWrite(c net.Conn) error {
	switch cc := c.(type) {
	case *tls.Conn:
		if err := cc.CloseWrite(); err != nil {
			return err
		}
		return cc.NetConn().(*net.TCPConn).CloseWrite()
	case *net.TCPConn:
		return cc.CloseWrite()
	}
	return c.Close()
}

var benchTLS struct {
	once     sync.Once
	srv, cli *tls.Config
	err      error
}

// benchTLSConfigs returns a server configuration with a fresh ECDSA P-256
// certificate for 127.0.0.1 and a client configuration that trusts it. The
// suites are Go's defaults (TLS 1.3, AES-GCM on CPUs with AES-NI), as the
// gateway's policy would pick.
func benchTLSConfigs(b testing.TB) (*tls.Config, *tls.Config) {
	b.Helper()
	benchTLS.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			benchTLS.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "127.0.0.1"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			benchTLS.err = err
			return
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			benchTLS.err = err
			return
		}
		pool := x509.NewCertPool()
		pool.AddCert(leaf)
		benchTLS.srv = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
			MinVersion:   tls.VersionTLS12,
		}
		benchTLS.cli = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	})
	if benchTLS.err != nil {
		b.Fatal(benchTLS.err)
	}
	return benchTLS.srv, benchTLS.cli
}
