// Package confkey carries configuration errors with the key they are about.
//
// Every package's Config.Validate returns its problems as *Error values
// (several joined with errors.Join), each naming its key relative to the
// package's section ("ports", "weights.login_failed"). A caller that nests
// the section puts its own prefix in front with Under ("passive" +
// "ports" = "passive.ports"), and the command line walks the result with
// List and prints one "key: message" line per problem. No key is ever parsed
// back out of an error's text.
package confkey
