package policy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
)

// TLSConfig is the client-facing TLS policy.
type TLSConfig struct {
	// CertFile and KeyFile hold the PEM chain and key. Both empty: a
	// self-signed certificate is generated at start.
	CertFile, KeyFile string
	// MinVersion is tls.VersionTLS12 (the default when zero) or tls.VersionTLS13.
	MinVersion uint16
	// RequireProtectedData demands PROT P before any transfer; PROT C is
	// then refused with 534.
	RequireProtectedData bool
}

// ParseTLSVersion maps "1.2" and "1.3" to their crypto/tls constants.
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case "1.2", "":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not a supported TLS version (want \"1.2\" or \"1.3\")", s)
}

func (c TLSConfig) minVersion() uint16 {
	if c.MinVersion == 0 {
		return tls.VersionTLS12
	}
	return c.MinVersion
}

// SelfSigned reports whether the configuration asks for a generated certificate.
func (c TLSConfig) SelfSigned() bool { return c.CertFile == "" && c.KeyFile == "" }

// Validate checks the policy and that the certificate files load. Error
// messages name the key relative to the tls section.
func (c TLSConfig) Validate() error {
	var errs []error
	if v := c.minVersion(); v != tls.VersionTLS12 && v != tls.VersionTLS13 {
		errs = append(errs, fmt.Errorf("min_version: %#x is not allowed (TLS 1.2 or 1.3 only)", v))
	}
	switch {
	case c.SelfSigned():
	case c.CertFile == "":
		errs = append(errs, errors.New("cert_file: must be set when key_file is set"))
	case c.KeyFile == "":
		errs = append(errs, errors.New("key_file: must be set when cert_file is set"))
	default:
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, fmt.Errorf("cert_file: %w", err))
		}
	}
	return errors.Join(errs...)
}

// secureSuites are the TLS 1.2 suites the gateway offers: ECDHE key exchange
// and AEAD ciphers only. TLS 1.3 suites are not configurable in crypto/tls
// and are all AEAD.
var secureSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

var secureCurves = []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384}

// CertStore holds the served certificate. Swapping it is atomic, so a
// reload never disturbs handshakes in flight.
type CertStore struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewCertStore returns a store serving cert.
func NewCertStore(cert *tls.Certificate) *CertStore {
	s := &CertStore{}
	s.cur.Store(cert)
	return s
}

// Set replaces the served certificate.
func (s *CertStore) Set(cert *tls.Certificate) { s.cur.Store(cert) }

// Get returns the served certificate.
func (s *CertStore) Get() *tls.Certificate { return s.cur.Load() }

// LoadCertificate loads the configured pair, or generates a self-signed
// certificate for hosts when none is configured. generated reports the latter.
func (c TLSConfig) LoadCertificate(hosts []string) (cert *tls.Certificate, generated bool, err error) {
	if c.SelfSigned() {
		cert, err := GenerateSelfSigned(hosts)
		return cert, true, err
	}
	pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, false, fmt.Errorf("load certificate: %w", err)
	}
	return &pair, false, nil
}

// ServerConfig builds the tls.Config for client-facing control and data
// connections: TLS 1.2+ (or 1.3), ECDHE+AEAD suites, modern curves, session
// tickets on so that data connections can resume the control session. The
// same *tls.Config must serve control and data connections: its session
// ticket keys are what make resumption work.
func (c TLSConfig) ServerConfig(store *CertStore) *tls.Config {
	return &tls.Config{
		MinVersion:       c.minVersion(),
		CipherSuites:     secureSuites,
		CurvePreferences: secureCurves,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return store.Get(), nil
		},
	}
}
