// Package ldap is the LDAP / Active Directory provider (auth.Provider,
// named "ldap"): it checks a user's password by binding to the directory
// as the user, and reads the user's canonical name and groups.
//
// # Modes
//
// Bind mode (bind_dn_template): the user binds with a DN made from a
// template, "uid=%s,ou=people,dc=example,dc=org", the user name escaped for
// a DN (RFC 4514) first, so "admin,ou=x" stays one RDN value. A directory
// answers a bind to a DN that does not exist like a wrong password, so in
// this mode the provider cannot tell an unknown user: it denies (never
// auth.ErrUnknownUser), and providers after it in the chain are not asked.
// After the bind the user's own entry is read (as the user) for the
// canonical name (user_attribute) and memberOf.
//
// Search mode (base_dn): a service account (bind_dn, its password in
// bind_password_file; anonymous when bind_dn is empty) searches below
// base_dn with user_filter, the user name escaped for a filter (RFC 4515:
// "*" and ")(uid=*" match themselves only). No entry is
// auth.ErrUnknownUser; more than one is auth.ErrDenied and an error log
// line (the filter is wrong); exactly one: the user binds with the entry's
// DN. Active Directory: user_filter "(&(objectClass=user)(sAMAccountName=%s))",
// user_attribute sAMAccountName.
//
// # Outcomes of Verify
//
//   - An empty password is auth.ErrDenied without contacting the directory:
//     a simple bind with a DN and no password is an unauthenticated bind
//     (RFC 4513 5.1.2) that directories answer with success.
//   - A user name that is empty, longer than 256 bytes, not UTF-8, with
//     control characters or with leading or trailing spaces (which LDAP
//     matching ignores) is auth.ErrUnknownUser without contacting it.
//   - invalidCredentials (49) is auth.ErrDenied, except where Active
//     Directory's diagnostic says why ("..., data 775, ..."): 532 (password
//     expired) and 773 (must change password) are auth.ErrExpired; 533
//     (disabled), 701 (account expired) and 775 (locked) auth.ErrDisabled.
//     Other refusals of the bind (48, 50, 53, 34, 32, 19) are
//     auth.ErrDenied.
//   - Anything else (no server answers, TLS verification fails, a timeout,
//     the service account's bind refused, busy or unavailable results, a
//     failed group search) is auth.ErrUnavailable, wrapped with the cause.
//
// Errors name the user and DN but never the password.
//
// # Groups
//
// Groups come from the user's entry (group_attribute, memberOf by default:
// the value of each group DN's first RDN, so "cn=ops,ou=groups,..." is
// "ops") and, when group_base_dn is set, from a search below it with
// group_filter ("(&(objectClass=groupOfNames)(member=%s))", the user's DN
// escaped for a filter) naming each group by group_name_attribute (cn).
// Both are merged, sorted, at most 1000 of each.
//
// # Connections and time
//
// Every connection is made within dial_timeout (TCP, the TLS handshake of
// ldaps://, StartTLS), and every operation on it within timeout, both also
// within the login's context: a deadline on the socket ends a read that
// would hang (a directory that accepts and never answers), and the end of
// the context ends an operation at once. A server that cannot be reached
// hands over to the next URL; the last that answered is tried first.
//
// Searches run on a small pool of service connections (pool_size idle ones
// kept), which only ever bind as the service account, so they keep that
// identity and need no new bind when taken; one that fails on the network
// is discarded (a search on an idle connection the server had closed is
// retried once on a new one). A user's bind runs on a connection of its own,
// closed afterwards: re-binding a pooled connection as the service after
// each login would save the handshake but leave it bound as the last user
// whenever that second bind fails, and the user's connection would have
// to be checked again anyway. max_connections bounds the logins using the
// directory at once; a login waits for its turn within its own deadline.
//
// # TLS
//
// ldaps:// and StartTLS verify the directory's certificate against ca_file
// (or the system's roots) and server_name (or the URL's host), TLS 1.2 at
// least. Plain ldap:// without StartTLS is refused unless allow_cleartext
// is set; insecure_skip_verify turns verification off. Both are weakenings.
package ldap
