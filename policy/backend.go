package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// BackendTLS is the trust configuration for TLS towards the backend.
type BackendTLS struct {
	// CAFile is a PEM bundle the backend's certificate must chain to. Empty:
	// the system roots.
	CAFile string
	// ServerName is the name verified in the backend's certificate. Empty:
	// the host part of the backend address.
	ServerName string
	// InsecureSkipVerify turns verification off. Lab use only.
	InsecureSkipVerify bool
	// PinSHA256 is the SHA-256 of the backend certificate's public key
	// (SubjectPublicKeyInfo), as in HPKP's pin-sha256. When set, the leaf
	// must match it; without CAFile the pin alone is the trust (for legacy
	// servers with self-signed certificates).
	PinSHA256 []byte
	// ClientCertFile and ClientKeyFile: a certificate the gateway shows the
	// backend (mutual TLS).
	ClientCertFile, ClientKeyFile string
}

// ParsePin reads a pin given as base64 (as HPKP and `openssl dgst -binary |
// base64` write it) or as hex, with or without a "sha256/" prefix.
func ParsePin(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "sha256/")
	if b, err := hex.DecodeString(strings.ReplaceAll(s, ":", "")); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == sha256.Size {
		return b, nil
	}
	return nil, errors.New("not a SHA-256 pin (base64 or hex of 32 bytes)")
}

// SPKIPin returns the pin of a certificate.
func SPKIPin(cert *x509.Certificate) []byte {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return sum[:]
}

// Validate checks that the files load. Each problem is a *confkey.Error
// whose key is relative to the backend section ("ca_file").
func (b BackendTLS) Validate() error {
	var errs []error
	if b.CAFile != "" {
		if _, err := loadPool(b.CAFile); err != nil {
			errs = append(errs, confkey.New("ca_file", err))
		}
	}
	if b.PinSHA256 != nil && len(b.PinSHA256) != sha256.Size {
		errs = append(errs, confkey.Errorf("pin_sha256", "must be 32 bytes"))
	}
	switch {
	case b.ClientCertFile == "" && b.ClientKeyFile == "":
	case b.ClientCertFile == "" || b.ClientKeyFile == "":
		errs = append(errs, confkey.Errorf("client_cert_file", "client_cert_file and client_key_file go together"))
	default:
		if _, err := tls.LoadX509KeyPair(b.ClientCertFile, b.ClientKeyFile); err != nil {
			errs = append(errs, confkey.New("client_cert_file", err))
		}
	}
	return errors.Join(errs...)
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}

// ClientConfig builds the base tls.Config for backend connections. host is
// the backend's host, used as the verified name when ServerName is empty.
// Sessions must not share it as is: see SessionConfig.
func (b BackendTLS) ClientConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true, // bulk data: full-size records at once
		ServerName:                  b.ServerName,
		InsecureSkipVerify:          b.InsecureSkipVerify, //nolint:gosec // an explicit, logged lab setting
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if b.CAFile != "" {
		pool, err := loadPool(b.CAFile)
		if err != nil {
			return nil, fmt.Errorf("backend ca_file: %w", err)
		}
		cfg.RootCAs = pool
	}
	if b.ClientCertFile != "" {
		pair, err := tls.LoadX509KeyPair(b.ClientCertFile, b.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("backend client_cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if pin := b.PinSHA256; pin != nil {
		if b.CAFile == "" {
			// The pin replaces the chain check; it is checked below.
			cfg.InsecureSkipVerify = true //nolint:gosec // verified by VerifyConnection
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("backend showed no certificate")
			}
			if got := SPKIPin(cs.PeerCertificates[0]); subtle.ConstantTimeCompare(got, pin) != 1 {
				return fmt.Errorf("backend certificate pin mismatch: got sha256/%s", base64.StdEncoding.EncodeToString(got))
			}
			return nil
		}
	}
	return cfg, nil
}

// SessionConfig returns a copy of base with a session cache of its own.
//
// Servers such as vsftpd (require_ssl_reuse=YES) and ProFTPD refuse a data
// connection whose TLS session is not a resumption of the control
// connection's. crypto/tls keys its client cache by server name, which all
// sessions to one backend share, so a shared cache could resume another
// session's ticket. One cache per control session keeps each data connection
// on its own control session. ServerName must be set (ClientConfig does):
// without it the key would include the data port.
func SessionConfig(base *tls.Config) *tls.Config {
	cfg := base.Clone()
	cfg.ClientSessionCache = &sessionCache{}
	return cfg
}

// sessionCache is a tls.ClientSessionCache holding the session of one
// control connection, whatever the key. The first session stored wins:
// tickets that the server issues later on data connections are not kept, so
// every data connection resumes the control connection's session.
type sessionCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *sessionCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *sessionCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil || c.cs != nil {
		return // a delete request, or a data connection's ticket: keep the control one
	}
	c.cs = cs
}
