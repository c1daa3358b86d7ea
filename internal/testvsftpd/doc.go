// Package testvsftpd runs a real vsftpd (Debian's /usr/sbin/vsftpd) with
// explicit FTPS for tests: its local user (ftpsgate-fl unless Options.User;
// EnsureAccount creates one once per name
// with useradd if missing and gives it a fresh random SHA-512 password each run, logged in
// through PAM), a certificate from internal/testpki, vsftpd's strict TLS
// settings (TLS required for login and data, require_ssl_reuse=YES), in
// the foreground in a temporary directory.
//
// Tests that use it run only with FTPSGATE_INTEROP=1 and as root; they
// must not run concurrently with another test run that starts vsftpd (the
// user's password changes): take the lock, flock /tmp/vsftpd.lock go test.
// test/interop and the bench start their own vsftpd (plain, explicit and
// implicit; bench limits) on EnsureAccount, BaseConf and TLSConf.
package testvsftpd
