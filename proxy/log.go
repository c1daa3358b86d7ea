package proxy

// Log field names. Every line of a session carries fieldSession and
// fieldClient, and fieldUser once it is known.
const (
	fieldSession  = "session"
	fieldClient   = "client"
	fieldListener = "listener"
	fieldUser     = "user"
	fieldCommand  = "cmd"
	fieldCode     = "code"
	fieldDir      = "direction"
	fieldPath     = "path"
	fieldBytes    = "bytes"
	fieldDuration = "duration_seconds"
	fieldReason   = "reason"
	fieldTLS      = "tls_version"
	fieldSuite    = "tls_suite"
	fieldPort     = "port"
	fieldRemote   = "remote"
	fieldBytesIn  = "bytes_up"
	fieldBytesOut = "bytes_down"
)
