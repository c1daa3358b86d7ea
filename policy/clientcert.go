package policy

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// CertUser says which part of a client certificate names the FTP user.
type CertUser int

// The certificate-to-user mappings.
const (
	CertUserNone     CertUser = iota // no mapping: the certificate is not tied to USER
	CertUserCN                       // the subject common name
	CertUserSANEmail                 // an e-mail address among the subject alternative names
	CertUserSANDNS                   // a DNS name among the subject alternative names
)

// ParseCertUser parses "", "none", "cn", "san_email" or "san_dns".
func ParseCertUser(s string) (CertUser, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return CertUserNone, nil
	case "cn":
		return CertUserCN, nil
	case "san_email":
		return CertUserSANEmail, nil
	case "san_dns":
		return CertUserSANDNS, nil
	}
	return 0, fmt.Errorf("%q is not a client_cert_user mapping (want cn, san_email or san_dns)", s)
}

func (m CertUser) String() string {
	switch m {
	case CertUserCN:
		return "cn"
	case CertUserSANEmail:
		return "san_email"
	case CertUserSANDNS:
		return "san_dns"
	}
	return "none"
}

// ErrCertUserMismatch means USER names someone else than the client certificate.
var ErrCertUserMismatch = errors.New("policy: user does not match the client certificate")

// CheckCertUser decides whether user may log in with the verified client
// certificate cert. With no mapping, or no certificate (client_auth request
// and none shown), anyone may. Names compare exactly: on a backend whose
// accounts are case-sensitive, "ALICE" is not alice. For directories whose
// names are not (Active Directory), see TLSConfig.CheckCertUser.
func (m CertUser) CheckCertUser(cert *x509.Certificate, user string) error {
	return m.checkCertUser(cert, user, false)
}

// CheckCertUser is ClientCertUser.CheckCertUser, except that with
// ClientCertUserCaseInsensitive the names compare ignoring the case of ASCII
// letters (only: other characters compare exactly, so that no Unicode
// folding, such as the Kelvin sign to k, lets another name through).
func (c TLSConfig) CheckCertUser(cert *x509.Certificate, user string) error {
	return c.ClientCertUser.checkCertUser(cert, user, c.ClientCertUserCaseInsensitive)
}

func (m CertUser) checkCertUser(cert *x509.Certificate, user string, ignoreCase bool) error {
	if m == CertUserNone || cert == nil {
		return nil
	}
	var names []string
	switch m {
	case CertUserCN:
		names = []string{cert.Subject.CommonName}
	case CertUserSANEmail:
		names = cert.EmailAddresses
	case CertUserSANDNS:
		names = cert.DNSNames
	}
	for _, n := range names {
		if n != "" && (n == user || ignoreCase && equalFoldASCII(n, user)) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not in the certificate's %s %q", ErrCertUserMismatch, user, m, names)
}

// equalFoldASCII reports whether a and b are equal but for the case of
// ASCII letters.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ClientChainVerifier returns the check that a client's certificate chain
// (leaf first, as the TLS handshake gives it) leads to ClientCAFile, for
// ClientCertPins mode where the handshake itself does not verify; nil when
// no client CA is configured (only pins can vouch for a certificate).
func (c TLSConfig) ClientChainVerifier() (func(certs []*x509.Certificate) bool, error) {
	if c.ClientCAFile == "" {
		return nil, nil
	}
	pool, err := loadPool(c.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("client_ca_file: %w", err)
	}
	return func(certs []*x509.Certificate) bool {
		if len(certs) == 0 {
			return false
		}
		inter := x509.NewCertPool()
		for _, ic := range certs[1:] {
			inter.AddCert(ic)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err == nil
	}, nil
}
