// Package testrsyslog runs a real rsyslog (Debian's /usr/sbin/rsyslogd,
// with the gtls driver of rsyslog-gnutls) for tests: its own
// configuration in the test's temporary directory, in the foreground
// (rsyslogd -n -f CONF -i PIDFILE), as the current user, listening on
// free loopback ports with imudp (UDP), imptcp (plain TCP, octet-counted
// framing) and imtcp with gtls (TLS, RFC 5425) using a server certificate
// from internal/testpki, and writing every message it receives to a file
// (omfile) that Lines parses back into the RFC 5424 fields. Stop and
// Start stop it (SIGTERM) and run it again on the same ports; t.Cleanup
// stops it.
//
// The tests that use it run only with FTPSGATE_INTEROP=1, the switch of
// test/interop; with the switch set, a missing rsyslogd or gtls driver
// fails the test instead of skipping it (apt-get install rsyslog
// rsyslog-gnutls).
package testrsyslog
