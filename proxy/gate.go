package proxy

import (
	"time"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Gate is asked at admission whether new sessions may start: Ready returns
// nil, or why not. The audit trail with audit.required is one: while it
// cannot be written, new sessions are refused with 421 (running sessions
// go on). Ready is called on every connection: it must be cheap.
type Gate interface{ Ready() error }

// WithGate refuses new sessions while g is not ready. Default: none.
func WithGate(g Gate) Option { return func(s *Server) { s.gate = g } }

// gateClosed refuses the session when the gate is closed (one 421 line and
// a log line, before any TLS work); it returns the refusal, or nil.
func (s *session) gateClosed() error {
	g := s.env.gate
	if g == nil {
		return nil
	}
	err := g.Ready()
	if err == nil {
		return nil
	}
	s.log.Error().Err(err).Msg("session refused: the gate is closed")
	s.emit(events.ConnectionRefused{Session: s.ev(), Reason: events.RefusedGate, Err: err})
	_ = s.raw.SetWriteDeadline(time.Now().Add(time.Second))
	_ = ftp.WriteReply(s.raw, ftp.NewReply(ftp.StatusNotAvailable, "Service not available, closing control connection."))
	return s.errorf("gate closed: %w", err)
}
