// Package testpki makes throw-away certificate authorities and the ECDSA
// P-256 certificates they sign, for the tests and the benchmark: server
// certificates for 127.0.0.1, ::1 and localhost, client certificates for a
// name, and the PEM files servers are configured with.
// Nothing here is fit for production keys.
package testpki
