package policy

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
)

func encodePair(t *testing.T, c *tls.Certificate) (certPEM, keyPEM []byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// handshake runs a TLS handshake over a pipe and reads once on the client,
// so that TLS 1.3 tickets are stored; it reports whether it resumed.
func handshake(t *testing.T, server, client *tls.Config) bool {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(sc, server)
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err := s.Write([]byte("x"))
		done <- err
	}()
	c := tls.Client(cc, client)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c.ConnectionState().DidResume
}
