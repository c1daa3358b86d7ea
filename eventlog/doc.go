// Package eventlog is the log consumer of the gateway's event stream: it
// writes the zerolog lines of sessions (start, end, refused), logins,
// commands, transfers and refused data connections from the events the proxy emits.
// Lines that are not events (debug detail, internal errors) the proxy
// writes itself.
//
// Every line carries the session's fields (session, client, listener, and
// balancer, host and user once known); durations are in seconds with the
// unit in the field name.
package eventlog
