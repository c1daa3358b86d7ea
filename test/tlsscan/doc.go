// Package tlsscan scans the gateway's listeners with testssl.sh (Debian's
// testssl.sh package): explicit FTPS through --starttls ftp, implicit FTPS
// directly. It asserts what auditors ask for: no SSLv2/3, TLS 1.0 or 1.1, no
// CBC suite, only forward-secret suites, and no finding of severity MEDIUM or
// higher. The certificate is issued by a CA the test makes and hands to
// testssl.sh, the way an operator's certificate chains to a public CA.
//
// The scan runs when FTPSGATE_TLSSCAN=1, where a missing testssl.sh is a
// failure. CI runs it on its own, after the other tests: testssl.sh starts
// thousands of openssl processes, and on a loaded machine its probes time
// out and report nonsense. FTPSGATE_TLSSCAN_DIR names a directory that keeps
// the reports (JSON and text).
package tlsscan
