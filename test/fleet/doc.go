// Package fleet tests a fleet of ftpsgate replicas behind a real HAProxy,
// on loopback, with real programs: Debian's haproxy and vsftpd, curl and
// lftp as clients. It runs only with FTPSGATE_INTEROP=1, like test/interop
// (and as root: vsftpd logs its local user in through PAM); without the
// switch every test skips.
//
//	flock /tmp/vsftpd.lock env FTPSGATE_INTEROP=1 go test -count=1 -v ./test/fleet/
//
// # The harness (harness_test.go)
//
// Start builds the gateway once per run, starts vsftpd (explicit FTPS,
// internal/testvsftpd) and N gateway processes (3 by default). Replica i
// listens on 127.0.0.(2+i): its explicit FTPS control port, its admin API
// (a token file shared by the fleet) and its passive ports; every replica
// has the same configuration but for that host and passive.replica_index,
// so each leases only its slice of the fleet's passive.ports
// (passive.replicas: N). Its listener takes PROXY headers from 127.0.0.1,
// and its 227 replies advertise passive.public_host 127.0.0.1: the
// balancer. The certificate (internal/testpki, for 127.0.0.1) is one for
// the fleet, as behind a real balancer.
//
// HAProxy runs on 127.0.0.1 with the configuration `ftpsgate haproxy`
// generates from the replicas' files (after `ftpsgate validate --fleet`):
// the control port to every replica (leastconn, /readyz health checks on
// the admin API) and each replica's passive slice to it alone, both with
// PROXY v2. Clients reach only 127.0.0.1. The returned *Fleet has the
// balancer's address, each replica's admin address, configuration file and
// process (Kill, Restart), and helpers: curl and lftp runs, the replicas'
// JSON log lines, the admin token.
//
// All fixed ports come from one block of 100 in 54500-54999 (the first one
// whose ports are all free): gateway passive ports at +0..+59 (20 a
// replica), vsftpd's passive range at +60..+79, control +90, admin +92,
// vsftpd +95. Options.Extra adds YAML to every replica's configuration
// (the fleet: section of the shared state), Options.Env environment.
//
// # The tests
//
// TestHAProxyTransfers (issue 16): curl (PASV and EPSV) and lftp (PASV and
// EPSV) through the balancer only, 64 MiB up and down, SHA-256 compared on
// the backend's disk and on the client's side; every replica must have
// served sessions and transfers (its own log), and every data connection
// must have reached the replica whose slice holds its port.
package fleet
