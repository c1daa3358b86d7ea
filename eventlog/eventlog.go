package eventlog

import (
	"crypto/tls"
	"net"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
)

// Log field names.
const (
	FieldSession  = "session"
	FieldClient   = "client"
	FieldListener = "listener"
	FieldUser     = "user"
	FieldHost     = "host"
	FieldBalancer = "balancer"
	FieldCommand  = "cmd"
	FieldCode     = "code"
	FieldDir      = "direction"
	FieldPath     = "path"
	FieldBytes    = "bytes"
	FieldDuration = "duration_seconds"
	FieldReason   = "reason"
	FieldTLS      = "tls_version"
	FieldSuite    = "tls_suite"
	FieldPort     = "port"
	FieldRemote   = "remote"
	FieldBytesIn  = "bytes_up"
	FieldBytesOut = "bytes_down"
)

// Sink writes the log lines of the events it is given; other events pass.
type Sink struct{ log zerolog.Logger }

// New returns a Sink that writes to log.
func New(log zerolog.Logger) *Sink { return &Sink{log: log} }

// Emit writes e's line, if e has one.
func (s *Sink) Emit(e events.Event) {
	switch e := e.(type) {
	case events.Command:
		ev := with(s.log.Info(), e.Session).Str(FieldCommand, e.Text)
		if e.Path != "" {
			ev = ev.Str(FieldPath, e.Path)
		}
		if e.Rule != "" {
			ev = ev.Str("rule", e.Rule).Bool("allowed", e.Allowed)
		}
		ev.Int(FieldCode, e.Code).Msg("command")
	case events.Transfer:
		s.transfer(e)
	case events.SessionStarted:
		with(s.log.Debug(), e.Session).Msg("session start")
	case events.SessionEnded:
		ev := with(s.log.Info(), e.Session)
		if e.TLSVersion != 0 {
			ev = ev.Str(FieldTLS, tls.VersionName(e.TLSVersion)).Str(FieldSuite, tls.CipherSuiteName(e.TLSSuite))
		}
		ev.Int64(FieldBytesIn, e.BytesUp).Int64(FieldBytesOut, e.BytesDown).
			Float64(FieldDuration, e.Duration.Seconds()).Str(FieldReason, e.Reason).Msg("session end")
	case events.ConnectionRefused:
		with(s.log.Warn(), e.Session).Err(e.Err).Msg("connection refused")
	case events.DataRefused:
		s.dataRefused(e)
	case events.Login:
		s.login(e)
	case events.BackendHealth:
		if e.Up {
			s.log.Info().Str("backend", e.Backend).Str("address", e.Address).Msg("backend up")
		} else {
			s.log.Warn().Str("backend", e.Backend).Str("address", e.Address).Err(e.Err).Msg("backend down")
		}
	case events.BackendConfig:
		s.log.Info().Str("backend", e.Backend).Str("address", e.Address).Bool("checked", e.Checked).Msg("backend " + e.Change + " by a reload")
	case events.Inspection:
		dir := "download"
		if e.Upload {
			dir = "upload"
		}
		ev := with(s.log.Warn(), e.Session).Str(FieldPath, e.Path).Str(FieldDir, dir).
			Str("detector", e.Detector).Int("count", e.Count).Str("action", e.Action)
		if e.Ref != "" {
			ev = ev.Str("ref", e.Ref)
		}
		ev.Msg("content inspection finding")
	}
}

// loginMessages are the messages of refused logins by reason.
var loginMessages = map[string]string{
	events.LoginReasonTLSRequired:   "USER before AUTH TLS refused",
	events.LoginReasonAnonymous:     "anonymous login refused",
	events.LoginReasonCertificate:   "USER does not match the client certificate",
	events.LoginReasonPerUser:       "login refused: too many sessions for this user",
	events.LoginReasonUnavailable:   "authenticator unavailable",
	events.LoginReasonBackendDown:   "backend unavailable",
	events.LoginReasonMappedRefused: "the backend refused the mapped account",
	events.LoginReasonAccess:        "login refused by the access rules",
	events.LoginReasonStoreDown:     "login refused: the fleet's shared store is down",
}

func (s *Sink) login(e events.Login) {
	switch e.Result {
	case events.LoginOK:
		ev := with(s.log.Info(), e.Session)
		if e.BackendUser != "" && e.BackendUser != e.User {
			ev = ev.Str("backend_user", e.BackendUser)
		}
		if len(e.Factors) > 0 {
			ev = ev.Strs("factors", e.Factors)
		}
		ev.Msg("login succeeded")
		return
	case events.LoginFailed:
		ev := with(s.log.Warn(), e.Session).Int(FieldCode, e.Code).Str(FieldReason, e.Reason)
		if e.Err != nil {
			ev = ev.Err(e.Err)
		}
		ev.Msg("login failed")
		return
	}
	// Refused by the gateway, or the backend could not take the login.
	ev := s.log.Warn()
	switch e.Reason {
	case events.LoginReasonUnavailable, events.LoginReasonBackendDown, events.LoginReasonMappedRefused:
		ev = s.log.Error()
	}
	ev = with(ev, e.Session).Int(FieldCode, e.Code)
	if e.Err != nil {
		ev = ev.Err(e.Err)
	}
	if e.BackendUser != "" {
		ev = ev.Str("backend_user", e.BackendUser).Int("backend_code", e.BackendCode)
	}
	msg, ok := loginMessages[e.Reason]
	if !ok {
		msg = "login refused"
		ev = ev.Str(FieldReason, e.Reason)
	}
	ev.Msg(msg)
}

func (s *Sink) transfer(e events.Transfer) {
	ev := with(s.log.Info(), e.Session)
	switch {
	case e.Err != nil || e.Incomplete:
		// The copy failed (source cut short, no byte for data_idle, I/O
		// error): the destination was reset, the client got 426 (or the
		// backend's own failure reply).
		ev = with(s.log.Warn(), e.Session).Err(e.Err).Bool("incomplete", true)
	case e.CloseErr != nil:
		ev = ev.AnErr("close_error", e.CloseErr)
	case e.PeerClosed:
		ev = ev.Bool("peer_closed_first", true)
	}
	if e.BackendCode != e.Code {
		ev = ev.Int("backend_code", e.BackendCode)
	}
	if e.Hash != "" {
		ev = ev.Str("sha256", e.Hash).Int64("size", e.HashSize)
		if e.Offset != "" {
			ev = ev.Str("offset", e.Offset) // the hash covers the part from there
		}
	}
	if e.Held {
		ev = ev.Int64("held_bytes", e.HeldBytes).Int64("held_on_disk", e.HeldOnDisk)
	}
	dir := "download"
	if e.Upload {
		dir = "upload"
	}
	ev.Str(FieldCommand, e.Verb).Str(FieldDir, dir).Str(FieldPath, e.Path).Int64(FieldBytes, e.Bytes).
		Float64(FieldDuration, e.Duration.Seconds()).Int(FieldCode, e.Code).Bool("protected", e.Protected).Msg("transfer")
}

func (s *Sink) dataRefused(e events.DataRefused) {
	ev := with(s.log.Warn(), e.Session)
	if e.Err != nil {
		ev = ev.Err(e.Err)
	}
	if e.Remote != "" {
		ev = ev.Str(FieldRemote, e.Remote)
	}
	switch e.Reason {
	case events.DataRefusedSourceAddress:
		control, _, err := net.SplitHostPort(e.Client)
		if err != nil {
			control = e.Client
		}
		ev.Str("control", control).Uint16(FieldPort, e.Port).Msg("data connection from another address than the control connection: refused")
	case events.DataRefusedBusy:
		ev.Uint16(FieldPort, e.Port).Msg("data connection refused: too many TLS handshakes at once on this port")
	case events.DataRefusedTLSHandshake, events.DataRefusedTLSResumption:
		ev.Uint16(FieldPort, e.Port).Msg("data connection refused: waiting for another until the accept deadline")
	default:
		ev.Uint16(FieldPort, e.Port).Msg("data connection refused")
	}
}

// with adds the session's fields to a line.
func with(ev *zerolog.Event, s events.Session) *zerolog.Event {
	ev = ev.Str(FieldSession, s.ID).Str(FieldClient, s.Client).Str(FieldListener, s.Listener)
	if s.Balancer != "" {
		ev = ev.Str(FieldBalancer, s.Balancer)
	}
	if s.Host != "" {
		ev = ev.Str(FieldHost, s.Host)
	}
	if s.User != "" {
		ev = ev.Str(FieldUser, s.User)
	}
	return ev
}
