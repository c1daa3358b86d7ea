// Package demoftpd runs a small, real FTP server in-process, plain or FTPS.
//
// It exists so that `ftpsgate demo` and the end-to-end tests have a legacy
// backend to put behind the gateway without installing vsftpd or proftpd: one
// user, one directory, passive mode on the loopback interface, plain FTP by
// default. It is a demo and test fixture and must never be exposed as a
// production FTP server: it has no rate or login limits, a single credential,
// no idle timeouts, and it follows symbolic links that already exist under
// Root.
//
// # FTPS
//
// With Config.TLS the server speaks FTPS like vsftpd with ssl_enable, so that
// the gateway's backend TLS modes can be tested in-process. TLSMode selects
// explicit (AUTH TLS/SSL/TLS-C/TLS-P answered 234, then the handshake; RFC
// 4217) or implicit (TLS from the first byte) mode. PBSZ answers "200
// PBSZ=0"; PROT P and PROT C answer 200 and decide whether the following data
// connections use TLS (PROT S and E answer 536). A protected data connection
// is accepted, answered 150, and only then handshaken, as vsftpd does (clients
// such as jlaffaye/ftp start the handshake on their first read or write); it
// is closed with close_notify. A failed data handshake answers 522.
//
// RequireTLS refuses USER and PASS with 530 before AUTH TLS and a transfer
// without PROT P with 521 (vsftpd's force_local_logins_ssl and
// force_local_data_ssl). RequireSessionReuse refuses, with "522 SSL connection
// failed; session reuse required ...", a data connection whose handshake did
// not resume a TLS session of its own control connection (vsftpd's
// require_ssl_reuse). Sessions are bound to their control connection by
// giving each control connection a clone of Config.TLS with its own session
// ticket key: a ticket from another control connection cannot be opened, so
// that handshake is a full one (ConnectionState.DidResume is false). A client
// must therefore cache sessions (tls.Config.ClientSessionCache) and set
// ServerName, since Go's client caches by server name, or by address, which
// differs for every data connection.
//
// In explicit mode the read-ahead goroutine (below) stops after an AUTH line
// until the AUTH command has answered, and then runs the handshake itself,
// so that no byte of the ClientHello is read as a command.
//
// The server is built on goftp.io/server/v2 (v2.0.3), which supplies the
// control-connection loop, USER/PASS, CWD/CDUP/PWD, DELE and the obsolete
// commands. Everything that touches a data connection, and several commands
// whose goftp versions are wrong, are replaced by this package's own commands
// (Options.Commands), and the control connection is wrapped. The reasons, one
// goftp v2.0.3 defect each:
//
//   - ABOR does not exist (500), and the session loop does not read the control
//     connection during a transfer. The control connection is therefore read
//     ahead by a goroutine of ours that aborts the running transfer when ABOR
//     arrives (Telnet IP/Synch bytes in front of it are stripped); the transfer
//     then answers 426 and ABOR answers 226.
//   - Passive sockets: each PASV/EPSV leaves an accept goroutine holding a lock
//     for up to 60 s if the client never connects, closing such a session
//     blocks for that long, the listener binds all interfaces instead of the
//     control connection's address, and a range of one port panics (rand.Intn(0)).
//     PASV, EPSV and all transfers use our own listeners instead, which are
//     accepted from the command itself and closed with the session.
//   - RETR/STOR/APPE/LIST without a prior PASV/EPSV dereference a nil data
//     socket; the panic is recovered and the client never gets a reply.
//   - APPE without REST truncates the file (it is STOR); REST+STOR appends at
//     the end of the file instead of writing at the offset (O_APPEND); STOR
//     never closes its data connection.
//   - MKD is mkdir -p and succeeds on an existing directory, and its 257 reply
//     carries no quoted path; RMD is rm -rf (it deletes non-empty directories)
//     and may move the working directory; RNTO without RNFR renames the root.
//   - Multi-line replies (FEAT, MLST, STAT) separate lines with a bare LF; FEAT
//     advertises neither SIZE, MDTM nor REST STREAM, and its order is random;
//     MLSD lines end in a bare LF; MDTM and MLSD times are local, not UTC;
//     SIZE answers 450 (not 550) and succeeds on directories; TYPE rejects
//     "A N" and "L 8"; error replies can contain the real filesystem path.
//   - Server.Shutdown does not end open sessions, and it races with Serve.
//     Close here closes our own listener and every control connection, and
//     waits for goftp's session goroutines (they are counted through the
//     "Connection Terminated" log line goftp writes as their last act).
//
// goftp's own TLS support is not used: it reads the control connection itself
// and its PBSZ and PROT only know its own handshake.
//
// Remaining goftp limitations that this package does not fix: every session
// logs under the same goftp session id; a second USER after a successful login
// does not log the first user out; TYPE A is accepted but data is always sent
// unchanged (binary). Active mode (PORT, EPRT, LPRT) is refused with 502: the
// gateway always talks passive mode to its backend.
package demoftpd
