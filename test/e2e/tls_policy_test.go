package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

func writeFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDataSessionReuse: with data_session_reuse user (the default), a data
// connection that does a fresh TLS handshake is refused (431); the client's
// own resumption works. With session, one that resumes another session's
// ticket is refused even for the same user and address (TestSiblingSessionReuse
// has the rest). With optional, a fresh handshake works.
func TestDataSessionReuse(t *testing.T) {
	t.Run("user", func(t *testing.T) {
		g := startGateway(t)
		writeFile(t, g.root, "f.txt", []byte("protected"))

		// A fresh handshake on the data connection.
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		fresh := tls.Client(c.dataConn(port, ""), &tls.Config{InsecureSkipVerify: true})
		defer fresh.Close()
		c.send("RETR f.txt")
		c.expect(wire.StatusAboutToSend)
		_ = fresh.SetDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(fresh); err == nil && len(b) > 0 {
			t.Fatalf("fresh handshake got data %q", b)
		}
		c.expect(wire.StatusNeedSecurityResource)

		// The session's own resumption still works.
		port = c.epsv()
		own := c.tlsData(c.dataConn(port, ""))
		c.send("RETR f.txt")
		c.expect(wire.StatusAboutToSend)
		got, err := io.ReadAll(own)
		if err != nil || string(got) != "protected" {
			t.Fatalf("own data connection: %q, %v", got, err)
		}
		c.expect(wire.StatusClosingDataConnection)
	})
	t.Run("session", func(t *testing.T) {
		g := startGateway(t, func(c *proxy.Config) { c.TLS.DataSessionReuse = policy.ReuseSession })
		writeFile(t, g.root, "f.txt", []byte("protected"))
		// Another session's ticket, same user and address: b resumes a's
		// session on its data connection.
		a := dialRaw(t, g.addr("explicit"), false)
		a.login(false)
		b := dialRaw(t, g.addr("implicit"), true)
		b.login(true)
		port := b.epsv()
		stolen := tls.Client(b.dataConn(port, ""), a.tls)
		defer stolen.Close()
		b.send("RETR f.txt")
		b.expect(wire.StatusAboutToSend)
		_ = stolen.SetDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(stolen); err == nil && len(got) > 0 {
			t.Fatalf("foreign session got data %q", got)
		}
		b.expect(wire.StatusNeedSecurityResource)
		if !strings.Contains(g.logs.String(), "did not resume") {
			t.Error("no log line for the refused data connection")
		}
	})
	t.Run("optional", func(t *testing.T) {
		g := startGateway(t, func(c *proxy.Config) { c.TLS.DataSessionReuse = policy.ReuseOptional })
		writeFile(t, g.root, "f.txt", []byte("fresh is fine"))
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		fresh := tls.Client(c.dataConn(port, ""), &tls.Config{InsecureSkipVerify: true})
		defer fresh.Close()
		c.send("RETR f.txt")
		c.expect(wire.StatusAboutToSend)
		got, err := io.ReadAll(fresh)
		if err != nil || string(got) != "fresh is fine" {
			t.Fatalf("got %q, %v", got, err)
		}
		c.expect(wire.StatusClosingDataConnection)
	})
}

// TestClientCertificates: with client_auth require, no certificate means no
// greeting; a certificate for someone else than USER gets 530 before the
// backend is dialled; the right one logs in.
func TestClientCertificates(t *testing.T) {
	ca := newTestCA(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.TLS.ClientAuth = policy.ClientAuthRequire
		c.TLS.ClientCAFile = ca.pemFile
		c.TLS.ClientCertUser = policy.CertUserCN
		c.Listeners[0].AllowCleartext = true // client_auth require makes TLS mandatory anyway
	})
	withCert := func(l *leaf) *tls.Config {
		cfg := clientTLS()
		cfg.Certificates = []tls.Certificate{l.tls}
		return cfg
	}

	t.Run("implicit without certificate: no greeting", func(t *testing.T) {
		conn, err := tls.Dial("tcp", g.addr("implicit"), clientTLS())
		if err == nil {
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(conn)
			if bytes.Contains(b, []byte("220")) {
				t.Fatalf("greeted a client without a certificate: %q", b)
			}
		}
	})
	t.Run("explicit without certificate", func(t *testing.T) {
		c := dialRaw(t, g.addr("explicit"), false)
		c.do("USER "+user, wire.StatusNotLoggedIn) // no TLS, no login
		c.do("AUTH TLS", wire.StatusAuthOK)
		tc := tls.Client(c.conn, clientTLS())
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		err := tc.Handshake()
		if err == nil {
			_, err = tc.Read(make([]byte, 1)) // TLS 1.3: the alert comes after the client's Finished
		}
		if err == nil {
			t.Fatal("TLS without a client certificate succeeded")
		}
	})
	t.Run("certificate of another user", func(t *testing.T) {
		alice := ca.issue(t, "alice", true)
		conn, err := tls.Dial("tcp", g.addr("implicit"), withCert(alice))
		if err != nil {
			t.Fatal(err)
		}
		raw := &rawClient{t: t, conn: conn, r: wire.NewReader(conn)}
		defer conn.Close()
		raw.expect(wire.StatusReady)
		before := strings.Count(g.logs.String(), "backend connected")
		raw.do("USER "+user, wire.StatusNotLoggedIn)
		raw.do("USER bob", wire.StatusNotLoggedIn)
		if strings.Count(g.logs.String(), "backend connected") != before {
			t.Fatal("the backend was dialled for a USER that does not match the certificate")
		}
	})
	t.Run("the name in another case", func(t *testing.T) {
		// On a backend with case-sensitive accounts DEMO is someone else.
		conn, err := tls.Dial("tcp", g.addr("implicit"), withCert(ca.issue(t, user, true)))
		if err != nil {
			t.Fatal(err)
		}
		raw := &rawClient{t: t, conn: conn, r: wire.NewReader(conn)}
		defer conn.Close()
		raw.expect(wire.StatusReady)
		before := strings.Count(g.logs.String(), "backend connected")
		raw.do("USER "+strings.ToUpper(user), wire.StatusNotLoggedIn)
		raw.do("USER "+strings.ToUpper(user[:1])+user[1:], wire.StatusNotLoggedIn)
		if strings.Count(g.logs.String(), "backend connected") != before {
			t.Fatal("the backend was dialled for a USER that matches the certificate only ignoring case")
		}
	})
	t.Run("matching certificate", func(t *testing.T) {
		me := withCert(ca.issue(t, user, true))
		conn, err := tls.Dial("tcp", g.addr("implicit"), me)
		if err != nil {
			t.Fatal(err)
		}
		// The same config (and session cache) for the data connections.
		raw := &rawClient{t: t, conn: conn, r: wire.NewReader(conn), tls: me}
		defer conn.Close()
		raw.expect(wire.StatusReady)
		raw.login(true)
		writeFile(t, g.root, "cert.txt", []byte("mutual"))
		port := raw.epsv()
		data := raw.tlsData(raw.dataConn(port, ""))
		raw.send("RETR cert.txt")
		raw.expect(wire.StatusAboutToSend)
		if got, err := io.ReadAll(data); err != nil || string(got) != "mutual" {
			t.Fatalf("got %q, %v", got, err)
		}
		raw.expect(wire.StatusClosingDataConnection)
	})
}

// TestClientCertUserCaseInsensitive: with client_cert_user_case_insensitive
// (for backends whose accounts ignore case), a certificate for demo lets
// DEMO through to the backend, and still not bob.
func TestClientCertUserCaseInsensitive(t *testing.T) {
	ca := newTestCA(t)
	g := startGateway(t, func(c *proxy.Config) {
		c.TLS.ClientAuth = policy.ClientAuthRequire
		c.TLS.ClientCAFile = ca.pemFile
		c.TLS.ClientCertUser = policy.CertUserCN
		c.TLS.ClientCertUserCaseInsensitive = true
	})
	cfg := clientTLS()
	cfg.Certificates = []tls.Certificate{ca.issue(t, user, true).tls}
	conn, err := tls.Dial("tcp", g.addr("implicit"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw := &rawClient{t: t, conn: conn, r: wire.NewReader(conn)}
	defer conn.Close()
	raw.expect(wire.StatusReady)
	raw.do("USER bob", wire.StatusNotLoggedIn)
	before := strings.Count(g.logs.String(), "backend connected")
	raw.send("USER " + strings.ToUpper(user))
	if rep := raw.read(); rep.Code == wire.StatusNotLoggedIn && strings.Contains(rep.Text(), "certificate") {
		t.Fatalf("USER %s refused: %d %q", strings.ToUpper(user), rep.Code, rep.Text())
	}
	raw.send("PASS " + password) // the backend is dialled at PASS
	raw.read()
	if strings.Count(g.logs.String(), "backend connected") != before+1 {
		t.Fatal("the backend was not dialled for USER in another case")
	}
}

// swapCert points dir/tls.crt and dir/tls.key at a new timestamped
// directory through the ..data symlink, the way a Kubernetes secret mount
// updates.
func swapCert(t *testing.T, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	ts := filepath.Join(dir, ".."+time.Now().Format("20060102150405.000000000"))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, ts, "tls.crt", certPEM)
	writeFile(t, ts, "tls.key", keyPEM)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		link := filepath.Join(dir, f)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", f), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func servedSerial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestCertificateReload: replacing the files behind a symlink switches the
// served certificate within seconds, while a transfer started before runs
// to its end; a bad file keeps the old certificate.
func TestCertificateReload(t *testing.T) {
	ca := newTestCA(t)
	first, second := ca.issue(t, "first", false), ca.issue(t, "second", false)
	read := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	dir := t.TempDir()
	swapCert(t, dir, read(first.certFile), read(first.keyFile))
	g := startGateway(t, func(c *proxy.Config) {
		c.TLS.CertFile = filepath.Join(dir, "tls.crt")
		c.TLS.KeyFile = filepath.Join(dir, "tls.key")
	})
	if got := servedSerial(t, g.addr("implicit")); got != first.x509.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate", got)
	}
	data := randomBytes(t, 16<<20)
	writeFile(t, g.root, "big.bin", data)
	c := dial(t, g, "explicit")
	r, err := c.Retr("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}

	swapCert(t, dir, read(second.certFile), read(second.keyFile))
	deadline := time.Now().Add(10 * time.Second)
	for servedSerial(t, g.addr("implicit")) != second.x509.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate is not served 10 s after the swap")
		}
		time.Sleep(100 * time.Millisecond)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("transfer cut by the reload: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if sum(append(head, rest...)) != sum(data) {
		t.Fatal("download differs")
	}

	// A bad file: the second certificate stays.
	swapCert(t, dir, []byte("not a certificate"), read(second.keyFile))
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(g.logs.String(), "certificate reload failed") {
		if time.Now().After(deadline) {
			t.Fatal("no error logged for a bad certificate file")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := servedSerial(t, g.addr("implicit")); got != second.x509.SerialNumber.String() {
		t.Fatalf("a bad file replaced the certificate: serial %s", got)
	}
	// SIGHUP's reload says it failed (cmd/ftpsgate reports it as a failed
	// configuration reload).
	if err := g.srv.Reload(); err == nil {
		t.Fatal("Reload of a bad certificate file returned no error")
	}
	if got := servedSerial(t, g.addr("implicit")); got != second.x509.SerialNumber.String() {
		t.Fatalf("a forced reload of a bad file replaced the certificate: serial %s", got)
	}
}

func TestAnonymousAndSite(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Login.AllowedSiteCommands = []string{"IDLE"} })
	c := dialRaw(t, g.addr("explicit"), false)
	c.startTLS()
	c.do("USER anonymous", wire.StatusNotLoggedIn)
	c.do("USER FTP", wire.StatusNotLoggedIn)
	c.do("PBSZ 0", wire.StatusCommandOK)
	c.do("PROT P", wire.StatusCommandOK)
	c.do("USER "+user, wire.StatusUserOK)
	c.do("PASS "+password, wire.StatusLoggedIn)
	c.do("SITE CHMOD 777 /", wire.StatusNotImplementedParameter)
	c.send("SITE IDLE 60")
	if rep := c.read(); rep.Code == wire.StatusNotImplementedParameter && strings.Contains(rep.Text(), "not allowed") {
		t.Fatalf("an allowed SITE command was refused: %d %s", rep.Code, rep.Text())
	}
}

// TestBackendPinAndMutualTLS: the backend's key pin replaces a CA; the
// gateway shows its client certificate to a backend that requires one.
func TestBackendPinAndMutualTLS(t *testing.T) {
	ca := newTestCA(t)
	srvCert := ca.issue(t, "backend", false)
	gwClient := ca.issue(t, "gateway", true)
	start := func(t *testing.T, requireClientCert bool) *demoftpd.Server {
		cfg := &tls.Config{Certificates: []tls.Certificate{srvCert.tls}, MinVersion: tls.VersionTLS12}
		if requireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
			cfg.ClientCAs = ca.Pool()
		}
		be, err := demoftpd.Start(context.Background(), demoftpd.Config{
			Root: t.TempDir(), User: user, Password: password,
			TLS: cfg, TLSMode: demoftpd.TLSExplicit, RequireTLS: true, RequireSessionReuse: true,
			Logger: zerolog.Nop(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { be.Close() })
		return be
	}
	login := func(t *testing.T, trust policy.BackendTLS, be *demoftpd.Server, want int) {
		g := startGateway(t, func(c *proxy.Config) {
			c.Backend = proxy.Backend{Address: be.Addr(), TLS: proxy.TLSExplicit, Trust: trust}
		})
		c := dialRaw(t, g.addr("implicit"), true)
		c.do("USER "+user, wire.StatusUserOK) // answered at the edge: the backend is dialled at PASS
		if want == wire.StatusNotAvailable {
			c.do("PASS "+password, want)
		} else {
			c.do("PASS "+password, wire.StatusLoggedIn)
			c.do("PBSZ 0", wire.StatusCommandOK)
			c.do("PROT P", wire.StatusCommandOK)
			port := c.epsv()
			data := c.tlsData(c.dataConn(port, ""))
			c.send("LIST")
			c.expect(wire.StatusAboutToSend)
			_, _ = io.ReadAll(data)
			c.expect(wire.StatusClosingDataConnection)
		}
	}
	pin := policy.SPKIPin(srvCert.x509)
	t.Run("pin", func(t *testing.T) { login(t, policy.BackendTLS{PinSHA256: pin}, start(t, false), wire.StatusUserOK) })
	t.Run("wrong pin", func(t *testing.T) {
		bad := bytes.Repeat([]byte{7}, 32)
		login(t, policy.BackendTLS{PinSHA256: bad}, start(t, false), wire.StatusNotAvailable)
	})
	t.Run("mutual TLS", func(t *testing.T) {
		trust := policy.BackendTLS{CAFile: ca.pemFile, ClientCertFile: gwClient.certFile, ClientKeyFile: gwClient.keyFile}
		login(t, trust, start(t, true), wire.StatusUserOK)
	})
	t.Run("mutual TLS without a client certificate", func(t *testing.T) {
		login(t, policy.BackendTLS{CAFile: ca.pemFile}, start(t, true), wire.StatusNotAvailable)
	})
}
