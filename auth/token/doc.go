// Package token is the auth.Provider for OAuth 2.0 / OpenID Connect access
// tokens used as the FTP password: scripts that get a token from an SSO
// gateway send it in PASS, and the gateway checks it without asking the
// backend or a password file.
//
// A token is a JWT (RFC 7519) signed by the issuer. The Provider checks
//
//   - its size (at most Config.MaxTokenSize bytes) before parsing anything;
//   - its signature, with one of the allowed algorithms (RS256 and ES256 by
//     default; "none" and the HMAC algorithms are never accepted: the keys are
//     public), against the issuer's keys: a JWKS file read at start-up, or
//     the issuer's JWKS found by OpenID Connect discovery and cached, fetched
//     again when a token names a key the cache does not hold (key rotation);
//   - iss equal to Config.Issuer and Config.Audience among aud;
//   - exp present and not past, nbf (if present) not in the future, iat (if
//     present) not in the future, each with Config.Leeway of clock skew;
//   - the user claim (Config.UserClaim, "preferred_username" by default): a
//     non-empty string equal to the name the client sent with USER (unless
//     Config.IgnoreUser); the groups claim, if present, a list of strings.
//
// Verify answers as the auth.Provider contract says: a password that is not
// shaped like a JWT (three base64url parts, the first a JSON header) is
// auth.ErrUnknownUser, so that a password provider later in the chain
// decides; a JWT that fails any check is auth.ErrDenied, wrapped with the
// reason (never the token); an issuer that cannot be reached when its keys
// are needed is auth.ErrUnavailable, wrapped, within the caller's context
// and Config.HTTPTimeout.
//
// The Provider never logs, and never puts the token in an error.
//
// The coreos/go-oidc library does discovery, the remote key set (its cache
// and refresh on an unknown key id) and the signature, iss and aud checks;
// go-jose parses the JWKS file. The time checks are the Provider's own, for
// its bounded leeway (go-oidc allows no skew on exp and five minutes on nbf).
package token
