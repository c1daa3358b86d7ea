// Package proxy is the session engine of ftpsgate: the client-facing
// listeners (explicit and implicit FTPS), the control-channel session that
// answers what belongs to the edge and relays the rest to the legacy
// backend, the backend dialer (plain, explicit or implicit TLS), and the data
// relay that maps every data connection onto the configured passive range.
//
// The wire format lives in proxy/ftp, decisions in policy, the passive port
// range in nat, the choice among several backends and their health in
// upstream (upstreams.go and health.go hold the live state and run the
// checks); this package wires them to sockets. One goroutine (the
// session's) owns all writes to a control connection; readers run in their
// own goroutines and hand lines over on request, so that ABOR can arrive
// while a transfer runs.
package proxy
