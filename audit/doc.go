// Package audit is the gateway's audit trail: one record per session
// start and end, login, command, transfer (with the SHA-256 of what
// passed), refused data connection, ban, reload and certificate event,
// made from the event stream, in a stable, versioned JSON schema (Record),
// delivered to several sinks at once (a hash-chained JSON-lines file,
// syslog, HTTP), queued and spooled so that a sink's outage loses nothing.
package audit
