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
// Start builds the gateway once per run, then starts HAProxy (first: it
// binds the most ports; a port taken meanwhile moves the fleet to another
// block), vsftpd (explicit FTPS, internal/testvsftpd) and N gateway
// processes (3 by default). Replica i
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
// process (Replica.Kill, Replica.Start to restart it), and helpers: curl
// and lftp runs (Fleet.Curl, Fleet.Lftp), the replicas' JSON log lines
// (Replica.LogLines), an admin API client (Replica.Admin, the fleet's
// token), HAProxy's view of the replicas (Fleet.ServerStates from a stats
// socket the harness adds to the generated file; Fleet.WaitServer waits
// until a replica is UP or DOWN in every control backend).
//
// All fixed ports come from one block of 50 in 54500-54999 (the first one
// whose ports the fleet uses are free; the range is inside Linux's
// ephemeral ports, which .ci/run keeps out of them with
// net.ipv4.ip_local_reserved_ports, and the harness tries again for up to
// 60 s): gateway passive ports at +0..+29 (10 a replica), vsftpd's passive
// range at +30..+39, control +45, admin +46, vsftpd +47. Options.Extra adds YAML to every replica's configuration
// (the fleet: section of the shared state), Options.Env environment.
//
// # The tests
//
// TestHAProxyTransfers (issue 16): curl (PASV and EPSV) and lftp (PASV and
// EPSV) through the balancer only, 64 MiB up and down, SHA-256 compared on
// the backend's disk and on the client's side; every replica must have
// served sessions and transfers (its own log), and every data connection
// must have reached the replica whose slice holds its port.
//
// TestHAProxyReplicaDown: a killed replica is marked down by HAProxy's
// /readyz checks (2 s apart, fall 2), sessions go on through the others
// and none reaches it; restarted, it is marked up and serves again.
//
// The shared state (shared_test.go; a real redis-server from
// internal/testredis, the fleet: section per replica):
// TestFleetBansThroughBalancer: five wrong passwords through the
// balancer, spread over the replicas (leastconn, sessions held open), ban
// the client, whom every replica sees as 127.0.0.1 through PROXY v2; every
// replica's ban cache has it within 1 s; `ftpsgate bans list` and `remove`
// through one replica's admin API lift it everywhere within 1 s.
// TestFleetSessionsPerUserThroughBalancer: max_sessions_per_user 2 holds
// over the replicas; a killed replica's place expires in Redis within the
// lease (3 s) and a login through the balancer succeeds again.
// TestFleetRedisKilledMidRun (closed, local): Redis is killed during a
// 64 MiB curl download, which completes with its SHA-256; new sessions get
// 421 (closed) or log in (local); every replica logs the recovery once and
// serves again when Redis is back.
package fleet
