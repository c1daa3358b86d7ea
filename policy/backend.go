package policy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
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
}

// Validate checks that the CA file loads.
func (b BackendTLS) Validate() error {
	if b.CAFile == "" {
		return nil
	}
	if _, err := loadPool(b.CAFile); err != nil {
		return fmt.Errorf("ca_file: %w", err)
	}
	return nil
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
		MinVersion:         tls.VersionTLS12,
		ServerName:         b.ServerName,
		InsecureSkipVerify: b.InsecureSkipVerify, //nolint:gosec // an explicit, logged lab setting
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
