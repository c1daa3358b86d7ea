// Package events is the gateway's one typed event stream: what happened in
// a session (start, TLS, login, commands with the reply the client got,
// transfers, refused data connections) and around it (bans, certificate
// reloads, backend dial failures, passive port exhaustion). The proxy emits
// events through a Sink; logs, metrics and audit are consumers.
//
// Events are plain structs, passed by value. A Sink must not block: it is
// called on the session goroutine.
package events
