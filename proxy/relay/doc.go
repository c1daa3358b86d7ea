// Package relay is the data connections' byte pump: Run copies one
// transfer's bytes from its source to its destination (splice between plain
// TCP connections when no filter needs the bytes, a record-gathering copy
// loop otherwise), feeds the filter pipeline (package filter), cuts a
// transfer in which nothing moved for the idle timeout, tells a TLS
// source's truncation from its end, half-closes the destination (TLS
// close_notify, TCP FIN) and hands it to DrainAndClose. The session's
// transfer state machine (package proxy, transfer.go) and the ABOR protocol
// (abort.go) drive it; it knows nothing of FTP commands.
package relay
