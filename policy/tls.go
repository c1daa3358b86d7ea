package policy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// ClientAuth says whether clients must show a certificate.
type ClientAuth int

// The client certificate modes.
const (
	ClientAuthNone    ClientAuth = iota // no certificate asked for
	ClientAuthRequest                   // asked for, verified when given
	ClientAuthRequire                   // required and verified: no certificate, no session
)

// ParseClientAuth parses "none", "request" or "require".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return ClientAuthNone, nil
	case "request":
		return ClientAuthRequest, nil
	case "require":
		return ClientAuthRequire, nil
	}
	return 0, fmt.Errorf("%q is not a client_auth mode (want none, request or require)", s)
}

func (a ClientAuth) String() string {
	switch a {
	case ClientAuthRequest:
		return "request"
	case ClientAuthRequire:
		return "require"
	}
	return "none"
}

// TLSConfig is the client-facing TLS policy.
type TLSConfig struct {
	// CertFile and KeyFile hold the PEM chain and key. Both empty: a
	// self-signed certificate is generated at start.
	CertFile, KeyFile string
	// MinVersion is tls.VersionTLS12 (the default when zero) or tls.VersionTLS13.
	MinVersion uint16
	// CipherSuites are the TLS 1.2 suites offered; nil: DefaultCipherSuites.
	CipherSuites []uint16
	// Curves are the key exchanges offered; nil: DefaultCurves.
	Curves []tls.CurveID
	// RequireProtectedData demands PROT P before any transfer; PROT C is
	// then refused with 534.
	RequireProtectedData bool
	// DataSessionReuse is what a protected data connection's TLS handshake
	// must resume: its own control session or a sibling of the same user
	// and address (ReuseUser, the zero value), its own only (ReuseSession),
	// or nothing (ReuseOptional). See BindSession.
	DataSessionReuse SessionReuse
	// TicketRotation is how often session ticket keys change; zero: 1h.
	TicketRotation time.Duration
	// ClientAuth, ClientCAFile and ClientCertUser govern client certificates.
	ClientAuth     ClientAuth
	ClientCAFile   string
	ClientCertUser CertUser
	// ClientCertUserCaseInsensitive lets USER match the certificate's name
	// whatever the case of its ASCII letters: only for backends whose
	// accounts are case-insensitive (Active Directory). Off, ALICE is not
	// alice, as on a case-sensitive backend they are two accounts.
	ClientCertUserCaseInsensitive bool
	// ClientCertPins: the edge authenticator checks client certificates
	// against per-user pins (auth.mode gateway). The handshake then takes
	// any certificate (a pinned one need not chain to a CA) and the chain to
	// ClientCAFile, when one is set, is checked by VerifyClientChain;
	// ClientCAFile becomes optional.
	ClientCertPins bool
}

// Override is what a listener may change of the TLS policy.
type Override struct {
	MinVersion   uint16
	CipherSuites []uint16
	Curves       []tls.CurveID
}

// With returns c with the fields set in o replacing its own.
func (c TLSConfig) With(o Override) TLSConfig {
	if o.MinVersion != 0 {
		c.MinVersion = o.MinVersion
	}
	if o.CipherSuites != nil {
		c.CipherSuites = o.CipherSuites
	}
	if o.Curves != nil {
		c.Curves = o.Curves
	}
	return c
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

func (c TLSConfig) suites() []uint16 {
	if c.CipherSuites == nil {
		return DefaultCipherSuites
	}
	return c.CipherSuites
}

func (c TLSConfig) curves() []tls.CurveID {
	if c.Curves == nil {
		return DefaultCurves
	}
	return c.Curves
}

// TicketRotationInterval is how often the session ticket keys change.
func (c TLSConfig) TicketRotationInterval() time.Duration {
	if c.TicketRotation <= 0 {
		return time.Hour
	}
	return c.TicketRotation
}

// SelfSigned reports whether the configuration asks for a generated certificate.
func (c TLSConfig) SelfSigned() bool { return c.CertFile == "" && c.KeyFile == "" }

// Validate checks the policy and that the files load. Each problem is a
// *confkey.Error whose key is relative to the tls section ("curves"),
// several joined with errors.Join.
func (c TLSConfig) Validate() error {
	var errs []error
	if v := c.minVersion(); v != tls.VersionTLS12 && v != tls.VersionTLS13 {
		errs = append(errs, confkey.Errorf("min_version", "%#x is not allowed (TLS 1.2 or 1.3 only)", v))
	}
	if c.CipherSuites != nil && len(c.CipherSuites) == 0 && c.minVersion() < tls.VersionTLS13 {
		errs = append(errs, confkey.Errorf("cipher_suites", "empty: TLS 1.2 clients could not connect (set min_version \"1.3\" instead)"))
	}
	if c.Curves != nil && len(c.Curves) == 0 {
		errs = append(errs, confkey.Errorf("curves", "must not be empty"))
	}
	switch {
	case c.SelfSigned():
	case c.CertFile == "":
		errs = append(errs, confkey.Errorf("cert_file", "must be set when key_file is set"))
	case c.KeyFile == "":
		errs = append(errs, confkey.Errorf("key_file", "must be set when cert_file is set"))
	default:
		if _, err := loadKeyPair(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, confkey.New("cert_file", err))
		}
	}
	if c.ClientAuth != ClientAuthNone {
		if c.ClientCAFile == "" && !c.ClientCertPins {
			errs = append(errs, confkey.Errorf("client_ca_file", "required with client_auth %s (unless auth.mode gateway checks pinned certificates)", c.ClientAuth))
		} else if c.ClientCAFile == "" {
			if c.ClientCertUser != CertUserNone {
				errs = append(errs, confkey.Errorf("client_cert_user", "needs client_ca_file: the name of a certificate no CA vouches for proves nothing"))
			}
		} else if _, err := loadPool(c.ClientCAFile); err != nil {
			errs = append(errs, confkey.New("client_ca_file", err))
		}
	}
	if c.ClientCertUser != CertUserNone && c.ClientAuth == ClientAuthNone {
		errs = append(errs, confkey.Errorf("client_cert_user", "needs client_auth request or require"))
	}
	if c.ClientCertUserCaseInsensitive && c.ClientCertUser == CertUserNone {
		errs = append(errs, confkey.Errorf("client_cert_user_case_insensitive", "needs client_cert_user"))
	}
	if c.DataSessionReuse < ReuseUser || c.DataSessionReuse > ReuseOptional {
		errs = append(errs, confkey.Errorf("data_session_reuse", "%s is not a mode", c.DataSessionReuse))
	}
	if c.TicketRotation < 0 {
		errs = append(errs, confkey.Errorf("ticket_rotation", "must not be negative"))
	}
	return errors.Join(errs...)
}

// LoadCertificate loads the configured pair, or generates a self-signed
// certificate for hosts when none is configured. generated reports the latter.
func (c TLSConfig) LoadCertificate(hosts []string) (cert *tls.Certificate, generated bool, err error) {
	if c.SelfSigned() {
		cert, err := GenerateSelfSigned(hosts)
		return cert, true, err
	}
	pair, err := loadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, false, fmt.Errorf("load certificate: %w", err)
	}
	return pair, false, nil
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &pair, nil
}

// ServerConfig builds the tls.Config for client-facing control and data
// connections: TLS 1.2+ (or 1.3), ECDHE+AEAD suites, the configured curves,
// client certificates as configured, and session tickets on so that data
// connections can resume the control session. Control and data connections
// of one session must be served by the same *tls.Config (or a clone made by
// BindSession): its ticket keys are what make resumption work.
func (c TLSConfig) ServerConfig(certs CertGetter) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:       c.minVersion(),
		CipherSuites:     c.suites(),
		CurvePreferences: c.curves(),
		// Data connections are bulk transfers: full-size records from the
		// first byte (control replies are small either way).
		DynamicRecordSizingDisabled: true,
		GetCertificate:              certs.GetCertificate,
	}
	switch {
	case c.ClientAuth == ClientAuthRequest && c.ClientCertPins:
		cfg.ClientAuth = tls.RequestClientCert
	case c.ClientAuth == ClientAuthRequire && c.ClientCertPins:
		cfg.ClientAuth = tls.RequireAnyClientCert
	case c.ClientAuth == ClientAuthRequest:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case c.ClientAuth == ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if c.ClientAuth != ClientAuthNone && c.ClientCAFile != "" {
		pool, err := loadPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		cfg.ClientCAs = pool
	}
	return cfg, nil
}

// Describe lists the effective policy, one "key: value" line each, for
// `ftpsgate validate --verbose`.
func (c TLSConfig) Describe() []string {
	var suites, curves []string
	for _, id := range c.suites() {
		suites = append(suites, tls.CipherSuiteName(id))
	}
	if c.minVersion() == tls.VersionTLS13 {
		suites = []string{"(none: TLS 1.3 only)"}
	}
	for _, id := range c.curves() {
		curves = append(curves, curveName(id))
	}
	cert := c.CertFile
	if c.SelfSigned() {
		cert = "(generated self-signed at start)"
	}
	return []string{
		"min_version: " + tls.VersionName(c.minVersion()),
		"tls13_suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256",
		"tls12_suites: " + strings.Join(suites, ", "),
		"curves: " + strings.Join(curves, ", "),
		"certificate: " + cert,
		fmt.Sprintf("session_tickets: on, keys rotated every %s", c.TicketRotationInterval()),
		"client_auth: " + c.ClientAuth.String(),
		"client_cert_user: " + c.ClientCertUser.String(),
		fmt.Sprintf("client_cert_user_case_insensitive: %t", c.ClientCertUserCaseInsensitive),
		fmt.Sprintf("require_protected_data: %t", c.RequireProtectedData),
		"data_session_reuse: " + c.DataSessionReuse.String(),
	}
}
