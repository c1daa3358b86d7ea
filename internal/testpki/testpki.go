package testpki

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

// validity is how long certificates are valid, from an hour ago.
const validity = 48 * time.Hour

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	DER  []byte
}

// NewCA makes a CA named name that signs end-entity certificates only.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid, tmpl.IsCA, tmpl.MaxPathLenZero = true, true, true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, DER: der}, nil
}

// Pool is a pool holding the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is a certificate the CA issued, with its key.
type Leaf struct {
	DER    []byte
	Cert   *x509.Certificate
	Key    *ecdsa.PrivateKey
	KeyDER []byte // PKCS #8
	TLS    tls.Certificate
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server() (*Leaf, error) {
	return ca.issue("127.0.0.1", func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		t.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		t.DNSNames = []string{"localhost"}
	})
}

// Client issues a client certificate for name.
func (ca *CA) Client(name string) (*Leaf, error) {
	return ca.issue(name, func(t *x509.Certificate) {
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
}

func (ca *CA) issue(name string, set func(*x509.Certificate)) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := template(name)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	set(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{DER: der, Cert: cert, Key: key, KeyDER: keyDER,
		TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, nil
}

// template is what every certificate shares: a random serial, the name,
// valid from an hour ago for two days.
func template(name string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
	}, nil
}

// Files are a CA and a server certificate as the PEM files servers and
// clients are configured with.
type Files struct {
	CAFile    string // the CA certificate (curl --cacert, backend.ca_file)
	ChainFile string // the server certificate, then the CA
	CertFile  string // the server certificate alone (proftpd wants chain and key apart)
	KeyFile   string // the server's private key (PKCS #8), mode 0600
	Pool      *x509.CertPool
}

// WriteServer makes a CA named name and a server certificate (see Server)
// and writes them into dir.
func WriteServer(dir, name string) (*Files, error) {
	ca, err := NewCA(name)
	if err != nil {
		return nil, err
	}
	l, err := ca.Server()
	if err != nil {
		return nil, err
	}
	f := &Files{
		CAFile:    filepath.Join(dir, "ca.pem"),
		ChainFile: filepath.Join(dir, "server-chain.pem"),
		CertFile:  filepath.Join(dir, "server.pem"),
		KeyFile:   filepath.Join(dir, "server.key"),
		Pool:      ca.Pool(),
	}
	for _, w := range []struct {
		path string
		mode os.FileMode
		typ  string
		ders [][]byte
	}{
		{f.CAFile, 0o644, "CERTIFICATE", [][]byte{ca.DER}},
		{f.ChainFile, 0o644, "CERTIFICATE", [][]byte{l.DER, ca.DER}},
		{f.CertFile, 0o644, "CERTIFICATE", [][]byte{l.DER}},
		{f.KeyFile, 0o600, "PRIVATE KEY", [][]byte{l.KeyDER}},
	} {
		if err := WritePEM(w.path, w.mode, w.typ, w.ders...); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// WritePEM writes the DER blocks, all of type typ, into one PEM file.
func WritePEM(path string, mode os.FileMode, typ string, ders ...[]byte) error {
	var b []byte
	for _, der := range ders {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})...)
	}
	return os.WriteFile(path, b, mode)
}
