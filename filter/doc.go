// Package filter is the relay's filter pipeline: per transfer, each filter
// sees the transfer's metadata (Meta) and the bytes as they stream to the
// receiving side (Write), and gives a verdict in Finish before the final
// reply reaches the client. A veto (Verdict.Veto) turns the backend's 226
// into the filter's reply, and for an upload the gateway removes the
// partial file on the backend.
//
// Filters never import the proxy: the proxy builds them per transfer and
// feeds them. Write sees exactly the bytes passed to the receiving side,
// in order (plaintext, whatever TLS is on either side), on the buffers the
// relay already holds: a filter must not keep p after Write returns.
// Write and Finish run on one goroutine at a time, never concurrently.
//
// A filter that must stop a transfer at once and still choose the client's
// reply (the upload size limit, SizeLimit: 552) returns a *VetoError from
// Write; the session reads it from the relay's error with VetoOf.
package filter
