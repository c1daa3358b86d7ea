// Package interop tests ftpsgate with real programs on loopback: FTP servers
// behind the gateway and FTP clients in front of it.
//
// The tests run only when the environment switch FTPSGATE_INTEROP=1 is set;
// without it every test skips, so `go test ./...` stays hermetic. With the
// switch on, a missing program is a failure, not a skip, and the tests must
// run as root: they create a local user for vsftpd (useradd, chpasswd -c
// SHA512). .ci/run installs everything: vsftpd, curl, lftp, rclone and
// python3-pyftpdlib with apt; proftpd-core (+ proftpd-mod-crypto for
// mod_tls) and pure-ftpd, which conflict with vsftpd as Debian packages, are
// unpacked with dpkg-deb -x under /opt/ftpsgate-interop/<package>.
//
// The gateway binary is built once per run from ./cmd/ftpsgate and started
// as a real process with a YAML configuration the test writes. Every
// transfer compares the SHA-256 of the source and of the result, on the
// backend's disk and on the client's side.
//
//	FTPSGATE_INTEROP=1 go test -count=1 -v ./test/interop/
//
// FTPSGATE_INTEROP_RESULTS=FILE also writes the table of results to FILE;
// FTPSGATE_INTEROP_COMPAT=FILE writes it as the Markdown compatibility table
// (COMPAT.md).
//
// # The matrix (TestInteropMatrix, issue 3)
//
// Backends (matrixBackends), each started on loopback with a generated
// configuration in a temporary directory and its own passive range:
// vsftpd none/explicit/implicit (require_ssl_reuse=YES), ProFTPD none and
// explicit (mod_tls, which also requires session reuse on data), Pure-FTPd
// none and explicit (-Y 2), pyftpdlib none and explicit (TLS_FTPHandler,
// run with Debian's /usr/bin/python3). One gateway per backend with an
// explicit and an implicit listener and active.enabled: true.
//
// Clients (matrixClients): curl, lftp, Python ftplib.FTP_TLS as shipped
// ("ftplib") and with the one-line fix that resumes the TLS session on data
// connections ("ftplib+resume"), and github.com/jlaffaye/ftp in process.
//
// rclone (TestRcloneMatrix, issue 12) runs its own set, "tree": copy,
// check --download, sync both ways and purge of a 20-file tree with
// --transfers 8 --checkers 8, against vsftpd, ProFTPD and pyftpdlib with
// explicit FTPS, in the four passive modes. rclone keeps several control
// connections and one TLS session cache, so its data connections resume
// sibling sessions: what tls.data_session_reuse: user (the default) allows.
//
// Modes (cellModes): front explicit/implicit × data PASV/EPSV/PORT/EPRT ×
// TLS 1.2/1.3 on the front would be 16 per client and backend. The matrix
// runs a pairwise covering of 8 instead: every pair of values of two of the
// three dimensions occurs at least once. The TLS version is forced by the
// client (curl --tls-max, lftp ssl:priority, ftplib and Go Min/MaxVersion).
// A mode the client cannot do at all (jlaffaye/ftp: no active mode; lftp:
// EPRT only on IPv6) is recorded as n/a.
//
// Operation sets, so that the run stays bounded (well under CI's 15
// minutes on two cores):
//
//   - basic, every client × backend × mode: login, PWD, CWD, MKD, CDUP,
//     RMD, STOR (100 KiB), SIZE, RETR (300 KiB placed on the backend),
//     NLST, LIST.
//   - full, every client × backend once, in a mode that rotates with the
//     backend and the client: basic plus a directory and a file named with
//     spaces and UTF-8, a 0-byte file, MDTM, MLSD (where FEAT lists MLST),
//     APPE, REST+STOR, REST+RETR, RNFR/RNTO, DELE and ABOR in the middle of
//     a 32 MiB download followed by more commands; lftp also does mirror -R
//     and mirror of a tree of 200 files in subdirectories, put -c and get -c.
//     What each client cannot express is left out of its set: curl has no
//     MLSD and resumes uploads with SIZE+APPE instead of REST+STOR, and
//     ends a ranged download with ABOR; lftp has no APPE; jlaffaye/ftp has
//     no ABOR (it closes the download early instead).
//   - big, one client per backend (rotating): a 256 MiB file up and down.
//
// Backends run in parallel (t.Parallel, so two at a time at go test's
// default -parallel on two cores); the cells of one backend run in turn.
//
// # Identity at the edge (issue 12)
//
// TestLDAPGateway runs a real OpenLDAP slapd (internal/testslapd; Debian's
// slapd, which .ci/run installs) and the gateway in auth.mode gateway,
// configured by its YAML auth section, in front of pyftpdlib with one
// account per mapping target (so the files on disk show which account a
// login was mapped to): bind mode over LDAPS, search-then-bind with a
// service account over StartTLS and a group search, groups to factors and
// backend accounts (TOTP from a profile-only local entry, by ACCT after 332
// and appended), and the directory frozen, killed and restarted (421
// within the LDAP timeout, the session ends, a log line; no ban or lockout
// from the outage). TestTOTPClients, TestTOTPAcct and TestTOTPLftpReconnect
// log curl, lftp and ftplib in with password and TOTP against vsftpd,
// users enrolled with `ftpsgate users`.
//
// # The audit trail to a real rsyslog (issue 14)
//
// TestAuditSyslogOutage runs the gateway with its audit: section (a
// JSON-lines file, and syslog over TLS with RFC 5425 framing behind a disk
// spool) to a real rsyslogd (internal/testrsyslog; Debian's rsyslog and
// rsyslog-gnutls, which .ci/run installs), in front of the demo backend
// (internal/demoftpd, in the test process): 1,000 small transfers over
// explicit FTPS with jlaffaye/ftp, rsyslog killed after a third of them and
// started again on the same port 30 s later (FTPSGATE_RSYSLOG_OUTAGE
// shortens it for a quick run) while the transfers go on. Every record of
// the audit file reaches rsyslog with its JSON, in the file's order, none
// lost (the sink's resend after a reconnect shows up as duplicates of the
// same id), and the file's hash chain verifies.
//
// # The reverse-connect agent between network namespaces (issue 17)
//
// TestAgentNetns needs root and `ip netns` (iproute2) and nft (nftables);
// with the switch on, their absence is a failure. It makes two namespaces
// with unique names ("dmz" and "lan", deleted at the end) joined by a veth
// pair; in "lan" vsftpd (explicit FTPS, require_ssl_reuse=YES) listens on
// every address and two `ftpsgate agent`s dial the gateway in "dmz", and an
// nftables ruleset drops every inbound new connection and lets out only
// connections to the gateway's agent port. It checks that the DMZ reaches
// vsftpd before the ruleset and cannot after it (control port and passive
// range), that curl and lftp in the DMZ move 64 MiB both ways through the
// agents in PASV and EPSV (SHA-256 on both sides), that both agents carried
// streams, and that after one agent is killed during two downloads new
// sessions work through the other.
//
// # Results
//
// Every cell records pass, FAIL, known (a known limitation) or n/a; the
// table is printed at the end of the run and written to the files above.
// A known limitation (knownLimitations) is a cell that fails for a reason
// outside the gateway; the test asserts that it still fails, and with the
// listed text in its errors, transcript or its part of the gateway's log,
// so an entry cannot silently rot. It must never hide a gateway bug.
package interop
