package audit

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// clientTLS is the TLS client configuration of a remote sink (keys under
// section): the CA file that verifies the receiver (empty: the system
// roots), an optional client certificate and key, and the explicit,
// warned, insecure switch.
func clientTLS(section, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // an explicit, warned setting
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, confkey.New(section+".ca_file", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, confkey.Errorf(section+".ca_file", "%s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, confkey.New(section+".cert_file", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
