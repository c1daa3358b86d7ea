package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

// TestWriteServer: the files load as a key pair whose chain verifies for
// 127.0.0.1, ::1 and localhost against the CA file, and the key is private.
func TestWriteServer(t *testing.T) {
	f, err := WriteServer(t.TempDir(), "testpki CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, certFile := range []string{f.ChainFile, f.CertFile} {
		pair, err := tls.LoadX509KeyPair(certFile, f.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		caPEM, _ := os.ReadFile(f.CAFile)
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			t.Fatal("CA file holds no certificate")
		}
		for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
				t.Errorf("%s for %s: %v", certFile, host, err)
			}
		}
	}
	if st, err := os.Stat(f.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v, %v", st.Mode(), err)
	}
}

// TestClient: a client certificate verifies for client authentication
// only.
func TestClient(t *testing.T) {
	ca, err := NewCA("testpki CA")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ca.Client("alice")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := l.Cert.Verify(opts); err != nil {
		t.Fatal(err)
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if _, err := l.Cert.Verify(opts); err == nil {
		t.Error("a client certificate verified for server authentication")
	}
	if l.Cert.Subject.CommonName != "alice" {
		t.Errorf("name %q", l.Cert.Subject.CommonName)
	}
}
