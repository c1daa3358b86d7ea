// Package policy owns the gateway's decisions: the TLS policy (the strict
// tls.Config builders for the client side and the backend side, the served
// certificate and its reload, session binding for data connections), which
// commands a session may send in which state, whether a data-protection
// level or an active-mode target is allowed, and who may connect at all
// (connection rates, session caps, bans) and how fast data may flow.
//
// Everything here is plain types and functions that the proxy asks; none of
// it opens a socket, so it tests without a network.
package policy
