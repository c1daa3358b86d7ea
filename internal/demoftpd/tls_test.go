package demoftpd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// testCert returns a self-signed ECDSA P-256 certificate for 127.0.0.1 and a
// pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "demoftpd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// tlsFixture is a TLS demo server and what a client needs to trust it.
type tlsFixture struct {
	s    *Server
	root string
	pool *x509.CertPool
}

func startTLSServer(t *testing.T, cfg Config) *tlsFixture {
	t.Helper()
	cert, pool := testCert(t)
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	s, root := startServer(t, cfg)
	return &tlsFixture{s: s, root: root, pool: pool}
}

// client returns a client config; with a session cache unless fresh, so that
// data connections resume the control connection's session. ServerName is
// set because Go's client caches sessions by server name (by address
// otherwise, and every data connection has a new port).
func (f *tlsFixture) client(fresh bool) *tls.Config {
	cfg := &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if !fresh {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	return cfg
}

func (f *tlsFixture) login(t *testing.T, mode string, tc *tls.Config, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()
	if mode == TLSImplicit {
		opts = append(opts, ftp.DialWithTLS(tc))
	} else {
		opts = append(opts, ftp.DialWithExplicitTLS(tc))
	}
	return login(t, f.s, opts...)
}

func TestTLSRoundTrip(t *testing.T) {
	for _, mode := range []string{TLSExplicit, TLSImplicit} {
		for _, pasv := range []bool{false, true} {
			name := mode + "/epsv"
			if pasv {
				name = mode + "/pasv"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				f := startTLSServer(t, Config{TLSMode: mode, RequireTLS: true, RequireSessionReuse: true})
				c := f.login(t, mode, f.client(false), ftp.DialWithDisabledEPSV(pasv))

				data := randomBytes(t, 3<<20+77)
				if err := c.Stor("big.bin", bytes.NewReader(data)); err != nil {
					t.Fatalf("STOR: %v", err)
				}
				stored, err := os.ReadFile(filepath.Join(f.root, "big.bin"))
				if err != nil || sha256.Sum256(stored) != sha256.Sum256(data) {
					t.Fatalf("stored file differs (%d bytes, %v)", len(stored), err)
				}
				if got := retr(t, c, "big.bin", 0); sha256.Sum256(got) != sha256.Sum256(data) {
					t.Fatalf("RETR: %d bytes, hash differs", len(got))
				}
				if got := retr(t, c, "big.bin", 1<<20); !bytes.Equal(got, data[1<<20:]) {
					t.Fatalf("RETR from 1 MiB: %d bytes, differs", len(got))
				}
				entries, err := c.List("/")
				if err != nil || len(entries) != 1 || entries[0].Name != "big.bin" || entries[0].Size != uint64(len(data)) {
					t.Fatalf("LIST = %+v, %v", entries, err)
				}
				if err := c.Stor("empty", bytes.NewReader(nil)); err != nil {
					t.Fatalf("STOR empty: %v", err)
				}
			})
		}
	}
}

func TestTLSSessionReuseRequired(t *testing.T) {
	for _, mode := range []string{TLSExplicit, TLSImplicit} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := startTLSServer(t, Config{TLSMode: mode, RequireSessionReuse: true})
			if err := os.WriteFile(filepath.Join(f.root, "f"), []byte("hello"), 0o644); err != nil {
				t.Fatal(err)
			}

			// Without a session cache every data handshake is a full one.
			c := f.login(t, mode, f.client(true))
			if _, err := c.List("/"); replyCode(err) != 522 {
				t.Fatalf("LIST without session reuse: err = %v, want 522", err)
			}
			r, err := c.Retr("f")
			if err != nil {
				t.Fatalf("RETR: %v", err)
			}
			got, _ := io.ReadAll(r)
			if err := r.Close(); replyCode(err) != 522 || !strings.Contains(err.Error(), "session reuse required") {
				t.Fatalf("RETR without session reuse: %d bytes, err = %v, want 522", len(got), err)
			}
			if err := c.NoOp(); err != nil {
				t.Fatalf("session after 522: %v", err)
			}

			// The resuming client works.
			c = f.login(t, mode, f.client(false))
			if got := retr(t, c, "f", 0); string(got) != "hello" {
				t.Fatalf("RETR = %q", got)
			}
		})
	}
}

// TestTLSSessionReuseOwnControlConnection offers, on B's data connection, a
// session of another control connection A: refused, though A's data
// connections resume it.
func TestTLSSessionReuseOwnControlConnection(t *testing.T) {
	f := startTLSServer(t, Config{RequireTLS: true, RequireSessionReuse: true})
	if err := os.WriteFile(filepath.Join(f.root, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgA, cfgB := f.client(false), f.client(false)
	a := dialRaw(t, f.s)
	a.secure(cfgA)
	a.login()
	b := dialRaw(t, f.s)
	b.secure(cfgB)
	b.login()

	if got, code, resumed := a.retrTLS("f", cfgA); code != 226 || !resumed || string(got) != "hello" {
		t.Fatalf("A's data with A's session: %q, reply %d, resumed %v", got, code, resumed)
	}
	// Last use of cfgA: the full handshake stores a ticket of B in its cache.
	if got, code, resumed := b.retrTLS("f", cfgA); code != 522 || resumed {
		t.Fatalf("B's data with A's session: %q, reply %d, resumed %v; want 522", got, code, resumed)
	}
	if got, code, resumed := b.retrTLS("f", cfgB); code != 226 || !resumed || string(got) != "hello" {
		t.Fatalf("B's data with B's session: %q, reply %d, resumed %v", got, code, resumed)
	}
}

func TestTLSRequired(t *testing.T) {
	f := startTLSServer(t, Config{RequireTLS: true})
	if err := os.WriteFile(filepath.Join(f.root, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, f.s)
	rc.expect(503, "PBSZ 0")
	rc.expect(503, "PROT P")
	rc.expect(530, "USER demo")
	rc.expect(530, "PASS demo")
	rc.expect(504, "AUTH KERBEROS_V4")
	rc.secure(f.client(false))
	rc.expect(503, "AUTH TLS")
	rc.expect(536, "PROT S")
	rc.expect(504, "PROT X")
	rc.login()
	rc.expect(200, "PROT C")
	rc.epsv()
	rc.expect(521, "RETR f")
	rc.epsv()
	rc.expect(521, "LIST")
	rc.expect(200, "PROT P")
	if got, code, _ := rc.retrTLS("f", f.client(false)); code != 226 || string(got) != "hello" {
		t.Fatalf("RETR after PROT P: %q, reply %d", got, code)
	}
	rc.expect(221, "QUIT")
}

// TestTLSClearData: without RequireTLS, PROT C keeps data in the clear.
func TestTLSClearData(t *testing.T) {
	f := startTLSServer(t, Config{TLSMode: TLSImplicit})
	if err := os.WriteFile(filepath.Join(f.root, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := dialRawImplicit(t, f.s, f.client(false))
	rc.expect(503, "AUTH TLS")
	rc.expect(200, "PBSZ 0")
	rc.expect(200, "PROT C")
	rc.login()
	data := rc.dialData(rc.epsv())
	defer data.Close()
	rc.send("RETR f")
	rc.read(150)
	got, err := io.ReadAll(data)
	if err != nil || string(got) != "hello" {
		t.Fatalf("clear RETR = %q, %v", got, err)
	}
	rc.read(226)
}

func TestTLSFeat(t *testing.T) {
	for mode, want := range map[string][]string{
		TLSExplicit: {"AUTH TLS", "PBSZ", "PROT"},
		TLSImplicit: {"PBSZ", "PROT"},
	} {
		f := startTLSServer(t, Config{TLSMode: mode})
		var rc *rawClient
		if mode == TLSImplicit {
			rc = dialRawImplicit(t, f.s, f.client(false))
		} else {
			rc = dialRaw(t, f.s)
		}
		msg := rc.expect(211, "FEAT")
		for _, feat := range want {
			if !strings.Contains(msg, "\n "+feat+"\n") {
				t.Errorf("%s: FEAT lacks %q:\n%s", mode, feat, msg)
			}
		}
		if mode == TLSImplicit && strings.Contains(msg, "AUTH") {
			t.Errorf("implicit FEAT offers AUTH:\n%s", msg)
		}
	}
}

// TestTLSBadHandshake: garbage instead of a ClientHello ends the session, and
// Close still finds nothing running.
func TestTLSBadHandshake(t *testing.T) {
	f := startTLSServer(t, Config{})
	rc := dialRaw(t, f.s)
	rc.expect(234, "AUTH TLS")
	io.WriteString(rc.conn, "USER demo\r\n")
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(rc.conn); err != nil {
		t.Fatalf("after a bad handshake: %v, want EOF", err)
	}
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cert, _ := testCert(t)
	good := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, cfg := range []Config{
		{Root: dir, TLSMode: TLSExplicit},
		{Root: dir, RequireTLS: true},
		{Root: dir, RequireSessionReuse: true},
		{Root: dir, TLS: &tls.Config{}},
		{Root: dir, TLS: good, TLSMode: "starttls"},
	} {
		if s, err := Start(context.Background(), cfg); err == nil {
			s.Close()
			t.Errorf("Start(TLS %v, mode %q, require %v/%v) succeeded", cfg.TLS != nil, cfg.TLSMode, cfg.RequireTLS, cfg.RequireSessionReuse)
		}
	}
}

// secure runs AUTH TLS and the handshake on a raw client.
func (rc *rawClient) secure(cfg *tls.Config) {
	rc.t.Helper()
	rc.expect(234, "AUTH TLS")
	tc := tls.Client(rc.conn, cfg)
	if err := tc.Handshake(); err != nil {
		rc.t.Fatalf("handshake: %v", err)
	}
	rc.conn = tc
	rc.tp = textproto.NewConn(tc)
	rc.expect(200, "PBSZ 0")
	rc.expect(200, "PROT P")
}

func dialRawImplicit(t *testing.T, s *Server, cfg *tls.Config) *rawClient {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", s.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rc := &rawClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { rc.tp.Close() })
	rc.read(220)
	return rc
}

// retrTLS downloads path over a TLS data connection made with cfg, and
// returns the data, the final reply code and whether the handshake resumed.
func (rc *rawClient) retrTLS(path string, cfg *tls.Config) ([]byte, int, bool) {
	rc.t.Helper()
	raw := rc.dialData(rc.epsv())
	defer raw.Close()
	rc.send("RETR " + path)
	rc.read(150)
	tc := tls.Client(raw, cfg)
	resumed := false
	if err := tc.Handshake(); err == nil {
		resumed = tc.ConnectionState().DidResume
	}
	got, _ := io.ReadAll(tc)
	tc.Close()
	code, _, err := rc.tp.ReadResponse(0)
	if err != nil && code == 0 {
		rc.t.Fatalf("final reply: %v", err)
	}
	return got, code, resumed
}

// TestTLSCloseDuringTransfer: Close cuts a running TLS transfer and returns
// at once.
func TestTLSCloseDuringTransfer(t *testing.T) {
	f := startTLSServer(t, Config{TLSMode: TLSImplicit, RequireTLS: true, RequireSessionReuse: true})
	if err := os.WriteFile(filepath.Join(f.root, "big"), randomBytes(t, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	c := f.login(t, TLSImplicit, f.client(false))
	r, err := c.Retr("big")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatalf("read: %v", err)
	}
	start := time.Now()
	if err := f.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	io.Copy(io.Discard, r)
	r.Close()
}
