// Package vfs confines a session to a virtual root: the client sees "/",
// the backend sees a directory of its own tree (e.g. /partners/acme), and
// no path the client names can leave it, whatever the backend would make of
// it.
//
// It owns, as pure functions without a network:
//
//   - canonicalisation: a client path (absolute, or relative to the
//     session's own current directory) becomes one clean absolute virtual
//     path ("." and ".." resolved, repeated and trailing slashes removed);
//     a path that would climb above the root, or that carries a backslash,
//     a NUL or another control character, is refused (Resolve);
//   - mapping between virtual and backend paths (Root.ToBackend,
//     Root.FromBackend), the latter refusing backend paths outside the root;
//   - the path and command rules of a user or group and their decisions
//     (rules.go), each decision naming the rule that made it.
//
// The session engine (package proxy) calls these for every command that
// carries a path and for every reply that echoes one; it keeps its own
// current directory, so a backend's reply text is never the source of
// truth.
package vfs
