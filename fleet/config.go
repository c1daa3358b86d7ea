package fleet

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Mode is what the fleet does while its store cannot be reached
// (fleet.on_store_error).
type Mode int

const (
	// ModeClosed refuses new sessions (421) and logins while the store is
	// down: the fleet-wide bans, caps and TOTP replay checks hold or
	// nothing is served. Running sessions and transfers go on. The default.
	ModeClosed Mode = iota
	// ModeLocal keeps serving with each replica's own state: bans, caps and
	// used TOTP codes count per replica until the store is back.
	ModeLocal
)

func (m Mode) String() string {
	if m == ModeLocal {
		return "local"
	}
	return "closed"
}

// ParseMode parses "local" or "closed" ("" is closed).
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "closed":
		return ModeClosed, nil
	case "local":
		return ModeLocal, nil
	}
	return ModeClosed, fmt.Errorf("%q is not local or closed", s)
}

// Defaults.
const (
	DefaultKeyPrefix = "ftpsgate:"
	DefaultTimeout   = 200 * time.Millisecond
	DefaultLease     = 15 * time.Second

	minLease   = 3 * time.Second
	maxTimeout = 5 * time.Second
)

// TLS is how the store reaches Redis over TLS (fleet.redis.tls).
type TLS struct {
	Enabled    bool
	CAFile     string // PEM; empty: the system roots
	CertFile   string // client certificate (PEM), with KeyFile
	KeyFile    string
	ServerName string // empty: the address's host
}

// Config configures the shared store (the fleet section). The fleet is off
// while Addresses is empty.
type Config struct {
	// Addresses of Redis: one (a single server), several with MasterName
	// (Sentinel), or several without (Cluster).
	Addresses  []string
	MasterName string
	Username   string
	// Password is read by the caller from a file or the environment; it is
	// never logged.
	Password string
	TLS      TLS
	DB       int
	// KeyPrefix starts every key and the pub/sub channel (default
	// "ftpsgate:"): fleets sharing one Redis need distinct prefixes.
	KeyPrefix string
	// Replica names this gateway in the leases and the log (default: the
	// host name).
	Replica string
	// Timeout bounds each call to Redis (default 200ms).
	Timeout time.Duration
	// OnStoreError is what happens while Redis is down (default closed).
	OnStoreError Mode
	// Lease is how long a session's place lives without a heartbeat: a
	// replica that dies frees its places within it (default 15s).
	Lease time.Duration
}

// Enabled reports whether the fleet is configured.
func (c Config) Enabled() bool { return len(c.Addresses) > 0 }

func (c Config) prefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c Config) lease() time.Duration {
	if c.Lease <= 0 {
		return DefaultLease
	}
	return c.Lease
}

func (c Config) replica() string {
	if c.Replica != "" {
		return c.Replica
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "ftpsgate"
	}
	return h
}

// Validate checks the configuration. Each problem is a *confkey.Error
// whose key is relative to the fleet section ("redis.addresses[1]").
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	for i, a := range c.Addresses {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("redis.addresses[%d]", i), "%q is not host:port", a))
		}
	}
	if c.MasterName != "" && len(c.Addresses) == 0 {
		errs = append(errs, confkey.Errorf("redis.master_name", "needs redis.addresses (the Sentinels)"))
	}
	if c.DB < 0 {
		errs = append(errs, confkey.Errorf("redis.db", "must not be negative"))
	}
	if c.DB != 0 && len(c.Addresses) > 1 && c.MasterName == "" {
		errs = append(errs, confkey.Errorf("redis.db", "a Redis Cluster has only database 0"))
	}
	if c.Timeout < 0 || c.Timeout > maxTimeout {
		errs = append(errs, confkey.Errorf("timeout", "must be between 0 and %s (each call on a connection's path waits for it)", maxTimeout))
	}
	if c.Lease != 0 && c.Lease < minLease {
		errs = append(errs, confkey.Errorf("lease", "must be at least %s (heartbeats renew leases every third of it)", minLease))
	}
	if c.Lease < 0 {
		errs = append(errs, confkey.Errorf("lease", "must not be negative"))
	}
	if strings.ContainsAny(c.KeyPrefix, " \t\r\n*?[]{}") {
		errs = append(errs, confkey.Errorf("key_prefix", "%q must not hold blanks, braces or glob characters", c.KeyPrefix))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, confkey.Errorf("redis.tls.cert_file", "cert_file and key_file go together"))
	}
	if !c.TLS.Enabled && (c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.ServerName != "") {
		errs = append(errs, confkey.Errorf("redis.tls.enabled", "is off but redis.tls files or server_name are set"))
	}
	if c.TLS.Enabled {
		if _, err := c.TLS.config(); err != nil {
			errs = append(errs, confkey.New("redis.tls", err))
		}
	}
	return errors.Join(errs...)
}

// config builds the client TLS configuration (TLS 1.2 at least).
func (t TLS) config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Plaintext reports whether the store talks to a non-loopback Redis
// without TLS (for the start-up warnings).
func (c Config) Plaintext() bool {
	if !c.Enabled() || c.TLS.Enabled {
		return false
	}
	for _, a := range c.Addresses {
		h, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return true
		}
	}
	return false
}
