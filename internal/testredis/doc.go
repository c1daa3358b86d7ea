// Package testredis runs a real redis-server for tests: on a free loopback
// port, in a temporary directory, without persistence, stopped when the
// test ends. Stop and Restart (same port) let outage tests kill it and bring
// it back.
//
// A test skips, with a message saying so, when redis-server is not
// installed and the interop switch (FTPSGATE_INTEROP=1) is off; with the
// switch on (CI), a missing redis-server is a failure.
package testredis
