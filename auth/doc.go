// Package auth is the gateway's authenticator seam: who may log in, decided
// at the edge or left to the backend, and with which backend credentials.
//
// A session asks its Authenticator once per PASS, with the user name the
// gateway checked at USER, the password, and what it knows of the client
// (address, listener, verified certificate, RFC 7151 HOST). The answer is
// one of:
//
//   - Delegated (Passthrough, the default): the gateway does not decide; it
//     logs in to the backend with the client's own credentials and the
//     backend's 230 or 530 is the outcome. The session counts the user
//     only after the backend accepted.
//   - Decided: the authenticator accepted the user itself (local users,
//     LDAP, TOTP, certificates: the identity issue's providers). The
//     session counts the user, then dials the backend and logs in with
//     Result.Backend, credentials the client never sees.
//   - ErrDenied: a 530, counted as a failed login against the address.
//   - ErrUnavailable (or any other error): the authenticator cannot answer
//     (a directory down); the client gets 421 and the session ends.
//
// Providers never import the proxy; the proxy knows only this interface.
package auth
