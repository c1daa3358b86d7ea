// Package upstream owns the decisions about the gateway's backends that need
// no network: which routing target a session goes to (Rules, first match
// wins, then the default), which member of a pool of equivalent backends
// takes it (round robin or least sessions, healthy members only), and when
// a backend's health-check results turn it up or down (rise and fall
// counts).
//
// The session engine (package proxy) asks these when a session is about to
// dial its backend: at login, when what the rules need is known (the user,
// and in auth.mode gateway its groups; the HOST name; the listener; the
// client's address). A running session never moves.
//
// Probe is one health check, an FTP conversation (banner, AUTH TLS, a
// probe login) over a Dialer; package proxy runs the checks on their
// interval and feeds the results to Health.
//
// Apart from Probe, everything here is plain values and functions without
// network, safe for concurrent use where a type says so, and table-tested.
package upstream
