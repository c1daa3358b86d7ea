package events

import "time"

// Event is one of the concrete types of this package.
type Event interface{ event() }

// Sink receives events. Emit must be cheap and must not block or keep the
// event's pointers.
type Sink interface{ Emit(Event) }

// Nop discards every event.
type Nop struct{}

// Emit does nothing.
func (Nop) Emit(Event) {}

// Multi sends each event to every sink in order.
type Multi []Sink

// Emit sends e to each sink.
func (m Multi) Emit(e Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

// Func adapts a function to a Sink.
type Func func(Event)

// Emit calls f(e).
func (f Func) Emit(e Event) { f(e) }

// Session identifies a session in the events that belong to one.
type Session struct {
	ID       string
	Listener string
	Client   string // address:port as the gateway sees it (after PROXY)
	User     string // empty before login
	Host     string // what HOST named (RFC 7151); empty: none
	Balancer string // the balancer's address:port, when a PROXY header named the client
}

// Reasons a connection is refused before its session starts.
const (
	RefusedBanned      = "banned"
	RefusedConnRate    = "conn_rate"
	RefusedPerIP       = "per_ip"
	RefusedPreLogin    = "pre_login"
	RefusedMaxSessions = "max_sessions"
	RefusedProxyHeader = "proxy_header"
	RefusedGate        = "gate"       // a gate (proxy.WithGate: the audit trail with audit.required) is closed
	RefusedStore       = "store_down" // the fleet's shared store is down and fleet.on_store_error is closed
	RefusedOther       = "other"
)

// ConnectionRefused: a connection refused before its session started.
type ConnectionRefused struct {
	Session
	Reason string // one of the Refused* constants
	Err    error  // the refusal as the gateway decided it
}

// SessionStarted: a connection was admitted.
type SessionStarted struct {
	Session
	Time      time.Time
	LocalAddr string // the listener address the client reached (address:port)
}

// SessionEnded: the session is over.
type SessionEnded struct {
	Session
	Duration           time.Duration
	BytesUp, BytesDown int64
	Reason             string
	TLSVersion         uint16 // the control connection's; 0: plain
	TLSSuite           uint16
	// The client certificate of the control connection, when one was
	// sent: its subject (RFC 2253 form) and the hex SHA-256 of its DER.
	ClientCertSubject string
	ClientCertSHA256  string
}

// TLSHandshake: a client control-connection TLS handshake, ok or failed.
type TLSHandshake struct {
	Session
	OK      bool
	Version uint16 // tls.VersionTLS13...; 0 when it failed
	Suite   uint16
	Err     error
}

// Login results.
const (
	LoginOK            = "ok"
	LoginFailed        = "failed"       // the backend refused the credentials
	LoginRefused       = "refused"      // the gateway refused (TLS first, anonymous, certificate, per-user limit)
	LoginBackendFailed = "backend_down" // the backend could not be reached
)

// Login: a login attempt's outcome.
type Login struct {
	Session
	Result string // one of the Login* constants
	Reason string // why, for anything but LoginOK
	Code   int    // the reply the client got
	// Factors checked at the edge ("password", "totp", "client_cert",
	// "token"); empty when the backend decided.
	Factors []string
	// BackendUser is the backend account the user was mapped to (LoginOK,
	// and a mapped account the backend refused, with its BackendCode).
	BackendUser string
	BackendCode int
	Err         error // the cause, when there is one (never holds a secret)
}

// Reasons of refused logins (LoginRefused, LoginBackendFailed); a
// LoginFailed's reason is the authenticator's (auth.DenialReason) or
// "backend refused the credentials".
const (
	LoginReasonTLSRequired   = "tls_required"
	LoginReasonAnonymous     = "anonymous"
	LoginReasonCertificate   = "client_certificate"
	LoginReasonPerUser       = "max_sessions_per_user"
	LoginReasonUnavailable   = "authenticator unavailable"
	LoginReasonBackendDown   = "backend unavailable"
	LoginReasonMappedRefused = "backend refused the mapped account"
	LoginReasonAccess        = "access"     // the access section refused or could not confine the user
	LoginReasonStoreDown     = "store_down" // the fleet's shared store is down (fleet.on_store_error: closed)
)

// Command: a command and the reply the client got (the last one sent while
// the command was handled; 0 when none was).
type Command struct {
	Session
	Verb string
	Text string // the command as it may be logged: PASS and ACCT masked, unknown verbs without argument
	Path string // a confined session's virtual path(s) the command names, resolved; "" otherwise
	// Rule is the access rule that decided the command (a key path, e.g.
	// "access.profiles.partner.paths[1]"), and Allowed its decision; Rule
	// "" when no rule was asked.
	Rule    string
	Allowed bool
	Code    int
}

// Transfer: a data transfer is over.
type Transfer struct {
	Session
	Verb   string
	Upload bool
	Path   string // as the client named it (virtual when confined)
	// BackendPath is the argument the backend got (the backend path when
	// confined; the client's argument otherwise).
	BackendPath string
	Bytes       int64
	Duration    time.Duration
	Protected   bool
	Incomplete  bool   // the copy failed
	Hash        string // hex SHA-256 of the bytes relayed, when a filter computed one
	Code        int    // the final reply the client got
	// Detail, for the log line.
	Err         error  // why the copy failed (Incomplete)
	CloseErr    error  // the copy succeeded but ending it did not
	PeerClosed  bool   // the destination closed its end first
	BackendCode int    // the backend's final reply; 0: none came
	HashSize    int64  // the bytes Hash covers
	Offset      string // REST's argument: Hash covers the part from there
	// Held: a download held whole until its verdict (inspect.downloads:
	// hold), HeldBytes of it, HeldOnDisk of those in the spill file.
	Held                  bool
	HeldBytes, HeldOnDisk int64
}

// OK says whether the client was told the transfer succeeded.
func (t Transfer) OK() bool { return t.Code >= 200 && t.Code < 300 }

// DataRefused: a data connection was refused (wrong source address, TLS
// handshake failed or did not resume the control session, ...).
type DataRefused struct {
	Session
	Reason string // one of the DataRefused* constants
	Err    error
	Remote string // where the refused connection came from (address:port); may be empty
	Port   uint16 // the gateway's passive port it reached
}

// Reasons a client data connection is refused.
const (
	DataRefusedSourceAddress = "source_address" // not from the control connection's address
	DataRefusedTLSHandshake  = "tls_handshake"
	DataRefusedTLSResumption = "tls_resumption" // did not resume the control session (data_session_reuse)
	DataRefusedProxyHeader   = "proxy_header"
	DataRefusedBusy          = "busy" // too many handshakes at once on the port
)

// PassiveExhausted: no passive port was free for a session.
type PassiveExhausted struct {
	Session
	PerIP bool // the client's address had its share of ports already
}

// BackendDial: the backend was dialled (connect, TLS, banner).
type BackendDial struct {
	Session
	Backend  string // the backend's name (the single backend: "default")
	Duration time.Duration
	Err      error // nil: it worked
}

// BackendReleased: a session let go of the backend connection a
// successful BackendDial opened (it ended, or moved to another backend
// before login).
type BackendReleased struct {
	Session
	Backend string
}

// BackendCheck: one health check of a backend ran.
type BackendCheck struct {
	Backend  string
	Duration time.Duration
	Err      error // nil: it passed
	Up       bool  // the backend's state after it (rise and fall counts)
}

// BackendHealth: a checked backend turned up or down.
type BackendHealth struct {
	Backend string
	Address string
	Up      bool
	Err     error // the failed check that turned it down
}

// BackendConfig: a configuration reload added, changed or removed a
// backend. A removed backend takes no new session and is no longer
// checked; its running sessions finish on it.
type BackendConfig struct {
	Backend string
	Address string
	Change  string // BackendAdded, BackendChanged, BackendRemoved
	Checked bool   // it has a health check now (false when removed)
}

// The changes of BackendConfig.
const (
	BackendAdded   = "added"
	BackendChanged = "changed"
	BackendRemoved = "removed"
)

// Ban: an address was banned (Added) or unbanned.
type Ban struct {
	IP       string
	Added    bool
	Reason   string
	Until    time.Time
	Duration time.Duration
	Offences int
}

// Certificate kinds.
const (
	CertLoaded       = "loaded"
	CertReloaded     = "reloaded"
	CertReloadFailed = "reload_failed"
	CertExpiring     = "expiring"
	CertExpired      = "expired"
)

// Certificate: the served certificate was (re)loaded, failed to reload, or
// is near or past its end.
type Certificate struct {
	Kind     string
	NotAfter time.Time
	Err      error
}

// ConfigReload: a configuration reload was attempted.
type ConfigReload struct {
	OK  bool
	Err error
}

// Inspection: a content inspection detector's count passed its threshold
// in a transfer (filter/dlp). It never holds the matched data.
type Inspection struct {
	Session         // ID and User: the filter knows no more of its session
	Path     string // as the client named it
	Upload   bool
	Detector string // cards, ibans, ssns, emails, keywords, pattern:NAME, file_type:TYPE, gzip
	Count    int
	Action   string // alert or block
	Ref      string // the reference id the client got with a block
}

// Inspected: a transfer's bytes were inspected to their end (the scanned
// bytes, for the metrics).
type Inspected struct {
	Session
	Upload bool
	Bytes  int64
}

// StoreCall: one call of the fleet's shared store (Redis) ended; Op is a
// bounded name (record, admit, login, renew, release, ban, unban, list, lockout,
// totp, probe).
type StoreCall struct {
	Op       string
	Duration time.Duration
	Err      error // nil: it worked (a refusal is not an error)
}

// StoreState: the fleet's shared store went down (Up false) or came back.
// Mode is fleet.on_store_error: what the replica does while it is down.
type StoreState struct {
	Up   bool
	Mode string
	Err  error // why it went down
}

// StoreFallback: a decision was taken without the shared store (Mode
// local: with this replica's state; closed: refused).
type StoreFallback struct {
	Op   string
	Mode string
}

func (ConnectionRefused) event() {}
func (SessionStarted) event()    {}
func (SessionEnded) event()      {}
func (TLSHandshake) event()      {}
func (Login) event()             {}
func (Command) event()           {}
func (Transfer) event()          {}
func (DataRefused) event()       {}
func (PassiveExhausted) event()  {}
func (BackendDial) event()       {}
func (BackendReleased) event()   {}
func (BackendCheck) event()      {}
func (BackendHealth) event()     {}
func (BackendConfig) event()     {}
func (Ban) event()               {}
func (Certificate) event()       {}
func (ConfigReload) event()      {}
func (Inspection) event()        {}
func (Inspected) event()         {}
func (StoreCall) event()         {}
func (StoreState) event()        {}
func (StoreFallback) event()     {}
