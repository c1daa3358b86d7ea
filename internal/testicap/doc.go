// Package testicap runs a real ICAP virus scanner for tests: Debian's
// c-icap (/usr/bin/c-icap) with the virus_scan service of
// libc-icap-mod-virus-scan, scanning through ClamAV's clamd
// (/usr/sbin/clamd, the clamd_mod engine: c-icap's clamav_mod library mode
// reads only the system's database directory, clamd takes one of its own).
//
// Nothing is downloaded: the signature database is made offline by
// sigtool (sigtool --sha256 FILE, a .hsb hash signature) for files the test
// writes (random bytes), in a directory of its own that holds only that
// database. ClamAV names such a signature's threat "<name>.UNOFFICIAL"
// (Threat).
//
// Two services are offered: Service ("avscan", virus_scan in its simple
// mode: the verdict after the whole body, the threat in the reply's
// X-Infection-Found) and ServiceDefault ("virus_scan" as it comes: it
// begins its reply before the body ends, and a threat found then cuts the
// body it sends back, with no threat header).
//
// Start writes clamd's and c-icap's configurations in the test's temporary
// directory (the sockets in a short directory of their own: a Unix socket's
// path is bounded), starts clamd in the foreground and waits for its PING,
// then c-icap (-N) on a free loopback port and waits until the service
// answers OPTIONS. Stop and Start stop c-icap (SIGTERM to its process
// group) and run it again on the same port; t.Cleanup stops both.
//
// The bench (test/bench) starts its own clamd and c-icap, to measure
// their CPU, from the same pieces: Missing, WriteSignatures, ClamdConf and
// CICAPConf with a Config of its own (limits raised, clamd's cache off),
// PingClamd and Options.
//
// The tests that use it run only with FTPSGATE_INTEROP=1, the switch of
// test/interop; with the switch set, a missing program fails the test
// instead of skipping it (apt-get install c-icap libc-icap-mod-virus-scan
// clamav clamav-daemon).
package testicap
