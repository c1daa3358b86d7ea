// Package e2e holds the in-process end-to-end tests of the gateway: a real
// FTP server (internal/demoftpd) behind a proxy.Server, driven by the Go
// client github.com/jlaffaye/ftp and by a raw control-connection client for
// the protocol edges. Everything runs on loopback; nothing here needs an
// outside program.
package e2e
