package proxy

import "github.com/ftpsgate/ftpsgate/eventlog"

// Log field names (package eventlog writes the lines of events; the
// session writes the rest). Every line of a session carries fieldSession
// and fieldClient, and fieldUser once it is known.
const (
	fieldSession  = eventlog.FieldSession
	fieldClient   = eventlog.FieldClient
	fieldListener = eventlog.FieldListener
	fieldUser     = eventlog.FieldUser
	fieldCommand  = eventlog.FieldCommand
	fieldCode     = eventlog.FieldCode
	fieldDir      = eventlog.FieldDir
	fieldPath     = eventlog.FieldPath
	fieldBytes    = eventlog.FieldBytes
	fieldDuration = eventlog.FieldDuration
	fieldReason   = eventlog.FieldReason
	fieldTLS      = eventlog.FieldTLS
	fieldSuite    = eventlog.FieldSuite
	fieldPort     = eventlog.FieldPort
	fieldRemote   = eventlog.FieldRemote
	fieldBytesIn  = eventlog.FieldBytesIn
	fieldBytesOut = eventlog.FieldBytesOut
)
