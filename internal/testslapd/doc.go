// Package testslapd runs a real OpenLDAP slapd (Debian's /usr/sbin/slapd)
// for tests: its own slapd.conf in the test's temporary directory, an mdb
// database for dc=example,dc=org, the core, cosine, inetorgperson and nis
// schemas from /etc/ldap/schema, the memberof overlay (memberOf kept on
// the members of groupOfNames entries), listening on
// ldap://127.0.0.1:PORT (StartTLS offered) and ldaps://127.0.0.1:PORT2
// with a certificate from internal/testpki. Start waits until the server
// answers a bind as its rootdn; AddLDIF loads entries with the go-ldap
// client; t.Cleanup stops the server.
//
// The tests that use it run only with FTPSGATE_INTEROP=1, the switch of
// test/interop; with the switch set, a missing slapd fails the test
// instead of skipping it (apt-get install slapd ldap-utils).
package testslapd
