package audit

import "time"

// SchemaVersion is the version of the record schema (Record.V). It changes
// only when a field changes meaning or goes away; new fields do not
// change it.
const SchemaVersion = 1

// Kinds of records.
const (
	KindSessionStart = "session_start"
	KindSessionEnd   = "session_end"
	KindLogin        = "login"
	KindCommand      = "command"
	KindTransfer     = "transfer"
	KindDataRefused  = "data_refused"
	KindBan          = "ban"
	KindUnban        = "unban"
	KindConfigReload = "config_reload"
	KindCertificate  = "certificate" // reloads and expiry warnings
	KindInspection   = "inspection"  // a content inspection finding (alert or block)
	KindAudit        = "audit"       // the trail's own: records dropped, a sink down or back, a checkpoint
)

// Record is one audit record, schema version 1. Every record has V, ID,
// Time and Kind; the session's records have Session and the session
// fields; the kind's own part is in the matching pointer field. Records
// are encoded as JSON (one object per line in files); field names are the
// schema and never change within a version.
type Record struct {
	V    int       `json:"v"`
	ID   string    `json:"id"`   // unique: the gateway instance, a time and a counter
	Time time.Time `json:"time"` // UTC, nanoseconds
	Kind string    `json:"kind"`

	Session  string `json:"session,omitempty"`
	Listener string `json:"listener,omitempty"`
	Client   string `json:"client,omitempty"`   // address:port as the gateway sees it (after PROXY)
	Balancer string `json:"balancer,omitempty"` // the PROXY-protocol peer, when one sent the client's address
	User     string `json:"user,omitempty"`
	Host     string `json:"host,omitempty"` // what HOST named (RFC 7151)

	SessionStart *SessionStart `json:"session_start,omitempty"`
	SessionEnd   *SessionEnd   `json:"session_end,omitempty"`
	Login        *Login        `json:"login,omitempty"`
	Command      *Command      `json:"command,omitempty"`
	Transfer     *Transfer     `json:"transfer,omitempty"`
	DataRefused  *DataRefused  `json:"data_refused,omitempty"`
	Ban          *Ban          `json:"ban,omitempty"`
	Reload       *Reload       `json:"reload,omitempty"`
	Certificate  *Certificate  `json:"certificate,omitempty"`
	Audit        *Self         `json:"audit,omitempty"`
	Inspection   *Inspection   `json:"inspection,omitempty"`

	// Prev is the hex SHA-256 of the previous record line of the same file
	// (the hash chain); set by the file sink, empty in other sinks.
	Prev string `json:"prev,omitempty"`
	// Seq is the record's position in the file's chain (1, 2, ...,
	// continuing across rotations); set by the file sink, 0 in other sinks.
	// A gap names removed records.
	Seq uint64 `json:"seq,omitempty"`
}

// SessionStart: a connection was admitted.
type SessionStart struct {
	LocalAddr string `json:"local_addr,omitempty"` // the listener address the client reached
}

// SessionEnd: the session is over.
type SessionEnd struct {
	TLSVersion  string  `json:"tls_version,omitempty"`
	TLSSuite    string  `json:"tls_suite,omitempty"`
	CertSubject string  `json:"client_cert_subject,omitempty"`
	CertSHA256  string  `json:"client_cert_sha256,omitempty"`
	BytesUp     int64   `json:"bytes_up"`
	BytesDown   int64   `json:"bytes_down"`
	DurationS   float64 `json:"duration_seconds"`
	Reason      string  `json:"reason"`
}

// Login: a login attempt and its outcome.
type Login struct {
	Result      string   `json:"result"` // ok, failed, refused, backend_down
	Reason      string   `json:"reason,omitempty"`
	Factors     []string `json:"factors,omitempty"`
	BackendUser string   `json:"backend_user,omitempty"`
	Code        int      `json:"code"` // the reply the client got
}

// Command: a command and the reply the client got.
type Command struct {
	Verb    string `json:"verb"`
	Text    string `json:"text"`           // as it may be logged: PASS and ACCT masked
	Path    string `json:"path,omitempty"` // a confined session's virtual path
	Rule    string `json:"rule,omitempty"` // the access rule that decided it
	Allowed *bool  `json:"allowed,omitempty"`
	Code    int    `json:"code"`
}

// Transfer: a file transfer or listing is over.
type Transfer struct {
	Verb        string  `json:"verb"`
	Direction   string  `json:"direction"` // upload, download
	Path        string  `json:"path"`      // as the client named it (virtual when confined)
	BackendPath string  `json:"backend_path,omitempty"`
	Bytes       int64   `json:"bytes"`
	DurationS   float64 `json:"duration_seconds"`
	Code        int     `json:"code"` // the final reply the client got
	BackendCode int     `json:"backend_code,omitempty"`
	Complete    bool    `json:"complete"`
	SHA256      string  `json:"sha256,omitempty"` // of the bytes that passed; only for a complete transfer
	Size        int64   `json:"size,omitempty"`   // the bytes SHA256 covers
	Offset      string  `json:"offset,omitempty"` // REST: SHA256 covers the part from there
	Protected   bool    `json:"protected"`
	Error       string  `json:"error,omitempty"`
}

// DataRefused: a data connection refused.
type DataRefused struct {
	Reason string `json:"reason"`
	Remote string `json:"remote,omitempty"`
	Port   uint16 `json:"port"`
}

// Ban: an address banned or unbanned.
type Ban struct {
	Address string    `json:"address"`
	Until   time.Time `json:"until,omitzero"`
	Reason  string    `json:"reason,omitempty"`
	// Offences: a ban's count of the address's offences so far.
	Offences int `json:"offences,omitempty"`
}

// Reload: a configuration reload (SIGHUP).
type Reload struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Certificate: the served certificate reloaded, or near its expiry.
type Certificate struct {
	Event    string    `json:"event"` // reloaded, reload_failed, expiring, expired
	NotAfter time.Time `json:"not_after,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// Self: the trail about itself.
type Self struct {
	Event   string `json:"event"` // dropped, sink_down, sink_up, checkpoint
	Sink    string `json:"sink,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
	Error   string `json:"error,omitempty"`
	// Checkpoint: the chain's head signed with the configured Ed25519 key.
	Head      string `json:"head,omitempty"`
	Signature string `json:"signature,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
}

// Inspection: a content inspection detector passed its threshold in a
// transfer. It names the detector and the count, never the matched data.
type Inspection struct {
	Path      string `json:"path"`
	Direction string `json:"direction"` // upload, download
	Detector  string `json:"detector"`  // cards, ibans, ssns, emails, keywords, pattern:NAME, file_type:TYPE, gzip
	Count     int    `json:"count"`
	Action    string `json:"action"`        // alert, block
	Ref       string `json:"ref,omitempty"` // the reference id the client got with a block
}
