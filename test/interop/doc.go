// Package interop is the smoke test of ftpsgate with real programs: vsftpd
// (Debian's package) as the backend and curl as the client, on loopback only.
//
// The tests run only when the environment switch FTPSGATE_INTEROP=1 is set;
// without it every test skips, so `go test ./...` stays hermetic. With the
// switch on, a missing program (vsftpd, curl) is a failure, not a skip, and
// the tests must run as root: they create a local user for vsftpd (useradd,
// chpasswd -c SHA512).
//
// The gateway binary is built once per run from ./cmd/ftpsgate and started
// as a real process with a YAML configuration the test writes. Every
// transfer compares the SHA-256 of the source and of the result.
//
//	FTPSGATE_INTEROP=1 go test -count=1 -v ./test/interop/
//
// FTPSGATE_INTEROP_RESULTS=FILE also writes the table of results to FILE.
package interop
