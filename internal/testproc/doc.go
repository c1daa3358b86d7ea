// Package testproc runs the programs a test starts (gateways, FTP servers,
// balancers) as real processes: each in its own process group with its
// output in a log file, killed with the whole group when the test ends (or
// when the test binary dies), and waited for on a port; and the big random
// file such tests move and compare (RandomFile, SHA256File), and the log
// sink their goroutines write while the test reads it (SyncBuffer). Tests
// only.
package testproc
