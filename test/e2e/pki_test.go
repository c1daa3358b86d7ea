package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// testCA issues certificates for the tests (internal/testpki); its files are
// written in t.TempDir().
type testCA struct {
	*testpki.CA
	pemFile string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca, err := testpki.NewCA("ftpsgate e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := testpki.WritePEM(file, 0o600, "CERTIFICATE", ca.DER); err != nil {
		t.Fatal(err)
	}
	return &testCA{CA: ca, pemFile: file}
}

// leaf is an issued certificate with its PEM files.
type leaf struct {
	tls      tls.Certificate
	x509     *x509.Certificate
	certFile string
	keyFile  string
}

// issue makes a certificate: a server certificate for 127.0.0.1 when
// client is false, a client certificate for cn otherwise.
func (ca *testCA) issue(t *testing.T, cn string, client bool) *leaf {
	t.Helper()
	var (
		l   *testpki.Leaf
		err error
	)
	if client {
		l, err = ca.Client(cn)
	} else {
		l, err = ca.Server()
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := &leaf{tls: l.TLS, x509: l.Cert, certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	if err := testpki.WritePEM(out.certFile, 0o600, "CERTIFICATE", l.DER); err != nil {
		t.Fatal(err)
	}
	if err := testpki.WritePEM(out.keyFile, 0o600, "PRIVATE KEY", l.KeyDER); err != nil {
		t.Fatal(err)
	}
	return out
}
