package demoftpd

import (
	"fmt"
	"strings"

	"github.com/rs/zerolog"
)

// Log field names.
const (
	fieldComponent   = "component"
	fieldAddr        = "addr"
	fieldRoot        = "root"
	fieldRemote      = "remote"
	fieldGoftpID     = "goftp_session"
	fieldCommand     = "cmd"
	fieldParam       = "param"
	fieldCode        = "code"
	fieldReply       = "reply"
	fieldPath        = "path"
	fieldBytes       = "bytes"
	fieldDuration    = "duration"
	fieldAborted     = "aborted"
	fieldDataAddress = "data_addr"
	fieldTLSMode     = "tls_mode"
	fieldTLSVersion  = "tls_version"
	fieldResumed     = "tls_resumed"
)

// goftpSessionEnd is the message goftp v2.0.3 logs as the very last thing a
// session goroutine does (session.go, Session.Serve).
const goftpSessionEnd = "Connection Terminated"

// goftpLogger adapts goftp's Logger to zerolog at debug level, never writes a
// PASS argument, and reports the end of each session goroutine.
type goftpLogger struct {
	log          zerolog.Logger
	sessionEnded func()
}

func (l *goftpLogger) Print(sessionID string, message any) {
	msg := fmt.Sprint(message)
	l.log.Debug().Str(fieldGoftpID, sessionID).Msg(msg)
	if msg == goftpSessionEnd {
		l.sessionEnded()
	}
}

func (l *goftpLogger) Printf(sessionID string, format string, v ...any) {
	l.log.Debug().Str(fieldGoftpID, sessionID).Msgf(format, v...)
}

func (l *goftpLogger) PrintCommand(sessionID string, command string, params string) {
	if strings.EqualFold(command, "PASS") {
		params = "****"
	}
	l.log.Debug().Str(fieldGoftpID, sessionID).Str(fieldCommand, command).Str(fieldParam, params).Msg("command")
}

func (l *goftpLogger) PrintResponse(sessionID string, code int, message string) {
	l.log.Debug().Str(fieldGoftpID, sessionID).Int(fieldCode, code).Str(fieldReply, message).Msg("reply")
}
