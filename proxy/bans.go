package proxy

import (
	"context"
	"errors"
	"net/netip"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// A ban ends the running sessions of the banned address (unless
// bans.end_sessions is off). The ban arrives on whatever goroutine banned
// (the Defender's callback: an admin request, another session's failed
// login); that goroutine never writes to a session's connection. It cancels
// the session's contexts with errBanned as the cause, and the session
// goroutine, wherever it waits (a command, a backend reply, a transfer),
// answers 421 (a running transfer first gets its 426) and ends.

// sessionStop is a session's own cancellation, on top of the server's.
type sessionStop struct {
	drainCtx context.Context // srv.drainCtx, or this session banned: no more commands
	endDrain context.CancelCauseFunc
	endHard  context.CancelCauseFunc // cancels session.ctx (srv.hardCtx, or banned)
	ip       netip.Addr              // the client's address once known; guarded by session.infoMu
}

// initStop derives the session's contexts from the server's. release must
// run when the session ends.
func (s *session) initStop() {
	s.ctx, s.stop.endHard = context.WithCancelCause(s.env.hardCtx)
	s.stop.drainCtx, s.stop.endDrain = context.WithCancelCause(s.env.drainCtx)
}

// releaseStop frees the session's contexts.
func (s *session) releaseStop() {
	s.stop.endDrain(nil)
	s.stop.endHard(nil)
}

// publishIP makes the client's address (the PROXY header's, when on) known
// to endBanned. A ban that lands before it is caught by admission instead:
// the Defender holds the ban before it calls endBanned.
func (s *session) publishIP() {
	s.infoMu.Lock()
	s.stop.ip = s.clientIP
	s.infoMu.Unlock()
}

// banEnd tells the session that its address is banned. Safe from any
// goroutine.
func (s *session) banEnd() {
	s.stop.endDrain(errBanned)
	s.stop.endHard(errBanned)
}

// banned reports whether a ban ended the session.
func (s *session) banned() bool { return errors.Is(context.Cause(s.ctx), errBanned) }

// stopped is why the session's contexts ended: errBanned or errShuttingDown.
func (s *session) stopped() error {
	if s.banned() {
		return errBanned
	}
	return errShuttingDown
}

// leaveBanned answers 421 to a session ended by a ban of its address and
// returns the reason it ends.
func (s *session) leaveBanned() error {
	s.log.Warn().Str(fieldReason, "banned").Msg("address banned: ending the session")
	_ = s.reply(ftp.StatusNotAvailable, "Service not available: your address is banned.")
	return s.errorf("%w", errBanned)
}

// endBanned ends the live sessions that the ban e covers, unless
// bans.end_sessions is off. It is the Defender's callback: quick, no write.
func (srv *Server) endBanned(e policy.BanEvent) {
	if e.Kind != policy.EventBan || srv.cfg.Bans.KeepSessions {
		return
	}
	n := 0
	srv.mu.Lock()
	for sess := range srv.sessions {
		sess.infoMu.Lock()
		ip := sess.stop.ip
		sess.infoMu.Unlock()
		if e.Covers(ip) {
			sess.banEnd()
			n++
		}
	}
	srv.mu.Unlock()
	if n > 0 {
		srv.log.Warn().Str(fieldClient, e.IP.String()).Int("sessions", n).Msg("ending the banned address's sessions")
	}
}
