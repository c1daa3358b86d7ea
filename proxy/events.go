package proxy

import (
	"errors"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/policy"
)

// WithEvents sends the gateway's events to sink (metrics, audit). The
// gateway's own log consumer (package eventlog) sees each event first and
// writes its log line (commands, transfers, sessions, refused data
// connections). Without it events only make log lines.
func WithEvents(sink events.Sink) Option {
	return func(s *Server) { s.events = sink }
}

// emit sends one event to the log consumer and the server's sink.
func (s *Server) emit(e events.Event) {
	s.logEvents.Emit(e)
	if s.events != nil {
		s.events.Emit(e)
	}
}

// ev is the session's part of its events. Safe from any goroutine (it
// reads the admin snapshot).
func (s *session) ev() events.Session {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	i := s.shown
	return events.Session{ID: s.id, Listener: s.lst.Name, Client: i.Client, User: i.User, Host: s.evHost, Balancer: s.evBalancer}
}

func (s *session) emit(e events.Event) { s.env.emit(e) }

// refusedReason is the bounded reason of an admission refusal.
func refusedReason(err error) string {
	switch {
	case errors.Is(err, policy.ErrBanned):
		return events.RefusedBanned
	case errors.Is(err, policy.ErrConnRate):
		return events.RefusedConnRate
	case errors.Is(err, policy.ErrTooManyFromIP):
		return events.RefusedPerIP
	case errors.Is(err, policy.ErrTooManyPreLogin):
		return events.RefusedPreLogin
	case errors.Is(err, policy.ErrTooManySessions):
		return events.RefusedMaxSessions
	case errors.Is(err, errUntrustedProxy), errors.Is(err, errNoProxyHeader):
		return events.RefusedProxyHeader
	case errors.Is(err, policy.ErrStoreDown):
		return events.RefusedStore
	}
	return events.RefusedOther
}
