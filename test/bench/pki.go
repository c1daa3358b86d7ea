package main

import (
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
	"time"
)

// pki is a throw-away CA and one server certificate it signed for
// 127.0.0.1, as PEM files. Every server of the run (vsftpd, ftpsgate,
// proftpd) presents the same certificate, so that the TLS work is the same
// for all (ECDSA P-256).
type pki struct {
	CAFile   string // the CA certificate
	CertFile string // the server certificate, then the CA
	KeyFile  string // its private key (PKCS #8)
	CertOnly string // the server certificate alone (proftpd wants chain and key apart)
	pool     *x509.CertPool
}

func newPKI(dir string) (*pki, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ftpsgate bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	p := &pki{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server-chain.pem"),
		CertOnly: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server.key"),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{p.CAFile, caPEM, 0o644},
		{p.CertFile, append(append([]byte{}, certPEM...), caPEM...), 0o644},
		{p.CertOnly, certPEM, 0o644},
		{p.KeyFile, keyPEM, 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// clientConfig is the TLS configuration every Go client of the bench starts
// from. Each session clones it with its own session cache (see newSession).
func (p *pki) clientConfig() *tls.Config {
	return &tls.Config{
		RootCAs:    p.pool,
		ServerName: "127.0.0.1",
		MinVersion: tls.VersionTLS12,
		// What this Debian's curl and lftp offer (OpenSSL 3.0, GnuTLS
		// 3.7): no post-quantum hybrid, so that every target runs the
		// same key exchange. Go's default would get X25519MLKEM768 from
		// the gateway only (vsftpd's and ProFTPD's OpenSSL lack it).
		// FTPSGATE_BENCH_HYBRID=1 offers it, to measure what it costs.
		CurvePreferences: benchCurves(),
	}
}

func benchCurves() []tls.CurveID {
	if os.Getenv("FTPSGATE_BENCH_HYBRID") == "1" {
		return []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256}
	}
	return []tls.CurveID{tls.X25519, tls.CurveP256}
}
