// Package icap is the gateway's ICAP client (RFC 3507) and the transfer
// filter built on it: every file transfer's bytes stream to an ICAP
// service (a virus scanner such as c-icap with ClamAV, or a DLP engine) as
// they pass, and the verdict comes before the client's final reply.
//
// It is written on the standard library: no ICAP library for Go is kept
// up to date (the few there are have been left for years, and none
// streams a body of unknown length with a preview), and the part of the
// protocol a gateway needs is small.
//
// # Protocol
//
// OPTIONS is asked once per server and cached for its Options-TTL (an
// hour without one): Methods, Preview, Allow: 204, ISTag and
// Max-Connections are read from it. An upload goes as REQMOD (an
// encapsulated "PUT ftp://ftpsgate/<path>" request with the file as its
// body), a download as RESPMOD (a "GET" request and a "200 OK" response
// with the file as the response body). The body is chunked; the request
// says Allow: 204. When the server asks for a preview, its first bytes go
// first ("0; ieof" when the file ends inside them): a 204 or a blocking
// reply then ends the scan, and the rest of the transfer passes without
// being sent; 100 Continue sends the rest.
//
// Verdicts: 204 is clean; 200 is blocked when it names a threat
// (X-Infection-Found's Threat=, X-Virus-ID, X-Violations-Found) or carries
// a blocking HTTP response (any response to a REQMOD, an HTTP status of
// 400 or more to a RESPMOD) or a body of another length than was sent
// (c-icap's virus_scan outside its simple mode, finding a threat after it
// began to answer, cuts the body and names nothing), and clean otherwise
// (a message modified in place: the gateway cannot apply it to an FTP
// transfer, Report.Modified says so); 403 is blocked; any other status is
// a failure.
//
// Connections are persistent: a few idle ones are kept per server (at
// most Config.MaxIdle, never more than the server's Max-Connections) and
// checked before reuse (one that fails on its first use is replaced by a
// fresh one). Servers are tried in order: one that cannot be reached,
// fails OPTIONS or fails on the preview (the preview is held for that) is
// marked down for DefaultDownTime and the next takes the scan; later
// scans try the servers up first. A failure once the body streams past
// the preview cannot move the scan (the bytes are gone) and is a failure;
// the server is then marked down too. Every connect, read and write has
// Config.Timeout; the headers of a reply are bounded (8 KiB a line, 64
// KiB in all) and the body of a reply (an error page, an echo) is read
// and dropped, up to 1 MiB more than the gateway sent.
//
// # The filter
//
// Client.Filters (or NewFilter) gives proxy.Config.Filters one Filter per
// transfer. Write copies each buffer into a queue of four that the scan's
// goroutine sends on: an ICAP server slower than the transfer paces it,
// and nothing is held whole. A transfer the server judged early is cut at
// once when blocked (Write returns a *filter.VetoError), and passes
// unsent when clean. Finish ends the body and waits for the verdict:
//
//   - blocked: veto 550 "Transfer blocked: <threat> (ref <ref>)." (the
//     proxy removes a vetoed upload from the backend);
//   - the scanner unreachable or failing: Config.OnError, block (the
//     default: veto 451) or allow;
//   - past Config.MaxSize: Config.OverMaxSize (by default what OnError
//     says), decided in Write as the limit passes;
//   - a resumed (REST) or appended (APPE) transfer, of whose file the
//     scanner would see only a part (a file split across a STOR and APPEs,
//     or fetched in ranges, would never be scanned whole): Config.Partial,
//     by default refused with 550 at its first Write, before any byte
//     passes (the session keeps the file an APPE would have added to:
//     filter.ErrPartialTransfer); PartialScan scans the part.
//
// Report carries the reference of the reply, the threat, the server and
// the timings; Hooks.Done gets it for every scan (metrics, alerts, the
// audit record), Hooks.ServerError each server failure.
//
// A transfer cut before Finish is Closed by the session
// (filter.Chain.Close, for every transfer however it ended): the scan's
// connection closes at once. A scan not fed for five minutes gives up by
// itself.
package icap
