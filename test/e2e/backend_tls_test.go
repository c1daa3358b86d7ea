package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
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

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// selfSigned returns a fresh ECDSA P-256 certificate for 127.0.0.1, which is
// its own CA, and the path of its PEM in a temporary directory.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "e2e TLS backend"},
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
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// tlsBackend is a demo backend speaking FTPS like vsftpd with ssl_enable,
// force_local_logins_ssl, force_local_data_ssl and require_ssl_reuse.
type tlsBackend struct {
	srv    *demoftpd.Server
	root   string
	caFile string               // PEM of its certificate
	logs   *testproc.SyncBuffer // its debug log
}

func startTLSBackend(t *testing.T, mode proxy.TLSMode) *tlsBackend {
	t.Helper()
	cert, caFile := selfSigned(t)
	demoMode := demoftpd.TLSExplicit
	if mode == proxy.TLSImplicit {
		demoMode = demoftpd.TLSImplicit
	}
	root := t.TempDir()
	logs := &testproc.SyncBuffer{}
	srv, err := demoftpd.Start(context.Background(), demoftpd.Config{
		Root:                root,
		User:                user,
		Password:            password,
		TLS:                 &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		TLSMode:             demoMode,
		RequireTLS:          true,
		RequireSessionReuse: true,
		Logger:              zerolog.New(logs).Level(zerolog.DebugLevel),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // runs after the gateway's shutdown
		srv.Close()
		if t.Failed() {
			t.Logf("TLS backend log:\n%s", logs.String())
		}
	})
	return &tlsBackend{srv: srv, root: root, caFile: caFile, logs: logs}
}

// startGatewayTLSBackend starts a gateway whose backend is a TLS demo server
// in mode (the plain one startGateway starts stays unused). With untrusted,
// the gateway trusts another CA than the backend's certificate.
func startGatewayTLSBackend(t *testing.T, mode proxy.TLSMode, untrusted bool) (*gateway, *tlsBackend) {
	t.Helper()
	be := startTLSBackend(t, mode)
	caFile := be.caFile
	if untrusted {
		_, caFile = selfSigned(t)
	}
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend = proxy.Backend{
			Address: be.srv.Addr(),
			TLS:     mode,
			Trust:   policy.BackendTLS{CAFile: caFile},
		}
	})
	return g, be
}

func backendModeName(mode proxy.TLSMode) string {
	if mode == proxy.TLSImplicit {
		return "implicit"
	}
	return "explicit"
}

// TestBackendTLS goes through both listeners to a backend in explicit and in
// implicit TLS mode that requires TLS and session reuse on data connections.
func TestBackendTLS(t *testing.T) {
	for _, mode := range []proxy.TLSMode{proxy.TLSExplicit, proxy.TLSImplicit} {
		t.Run("backend-"+backendModeName(mode), func(t *testing.T) {
			g, be := startGatewayTLSBackend(t, mode, false)
			for _, listener := range []string{"explicit", "implicit"} {
				t.Run(listener, func(t *testing.T) {
					c := dial(t, g, listener)
					storListRetr(t, c, be.root, "tls-"+listener+".bin", 5<<20+321)
				})
			}
			// The backend saw TLS data connections, all resumed (it refuses others).
			if logs := be.logs.String(); strings.Count(logs, `"tls_resumed":true,"message":"data connection secured"`) < 6 {
				t.Errorf("backend log shows fewer than 6 resumed TLS data connections:\n%s", logs)
			}
		})
	}
}

// TestBackendTLSUntrusted: a backend certificate that does not chain to the
// configured CA ends the login with 421.
func TestBackendTLSUntrusted(t *testing.T) {
	for _, mode := range []proxy.TLSMode{proxy.TLSExplicit, proxy.TLSImplicit} {
		t.Run("backend-"+backendModeName(mode), func(t *testing.T) {
			g, _ := startGatewayTLSBackend(t, mode, true)
			c := dialRaw(t, g.addr("explicit"), false)
			c.startTLS()
			c.do("USER "+user, wire.StatusUserOK) // answered at the edge
			c.do("PASS "+password, wire.StatusNotAvailable)
		})
	}
}
