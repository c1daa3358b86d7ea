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
// and none shown), anyone may. Names compare case-insensitively.
func (m CertUser) CheckCertUser(cert *x509.Certificate, user string) error {
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
		if n != "" && strings.EqualFold(n, user) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not in the certificate's %s %q", ErrCertUserMismatch, user, m, names)
}
