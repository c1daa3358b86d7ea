// Package admin is the gateway's admin HTTP API: list, add and remove bans,
// list live sessions, and a health check (the same server later serves
// metrics). It is off unless admin.address is set.
//
// The address is a TCP address ("127.0.0.1:9090", "[::1]:9090",
// "localhost:9090", or any other with care) or a unix socket
// ("unix:/run/ftpsgate/admin.sock"). On TCP, loopback included (every local
// account can reach loopback), admin.token_file is required and every
// request but GET /healthz and GET /readyz needs "Authorization: Bearer <token>", checked in
// constant time. A unix socket needs no token: it is created mode 0660 (and
// never more open, whatever the umask), so the file system decides who may
// connect; keep its directory private. POST bodies must be application/json.
//
// The endpoints speak JSON:
//
//	GET    /healthz         {"status": "ok"} (no token needed)
//	GET    /readyz          {"status": "ready"}, or 503 {"status": "not ready", "reason"} (with WithReadiness; no token needed)
//	GET    /v1/bans         {"bans": [{"ip", "since", "until", "reason", "offences"}, ...]}
//	POST   /v1/bans         {"ip": "192.0.2.7", "duration": "1h", "reason": "..."} -> 201 and the ban;
//	                        duration empty: bans.duration; reason empty: "admin"
//	DELETE /v1/bans/{ip}    204, or 404 when ip is not banned
//	GET    /v1/sessions     {"sessions": [{"id", "client", "user", "listener", "started", "bytes_up", "bytes_down"}, ...]}
//	GET    /v1/limits       the admission counters (with WithAdmission)
//
// Errors are {"error": "..."} with 400 (bad input), 401 (token),
// 404, 409 (an allowlisted address cannot be banned), 503 (bans are off).
//
// Client speaks to it for the command line (ftpsgate bans list|add|remove).
package admin
