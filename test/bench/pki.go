package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// The run's certificates come from internal/testpki: one CA and one server
// certificate for 127.0.0.1 that every server of the run (vsftpd, ftpsgate,
// proftpd) presents, so that the TLS work is the same for all (ECDSA P-256).

// clientConfig is the TLS configuration every Go client of the bench starts
// from. Each session clones it with its own session cache (see newSession).
func clientConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		RootCAs:    roots,
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
