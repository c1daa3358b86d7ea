package proxy

import (
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// applyLimits enforces a confined user's profile limits at login: the
// networks and listeners it may come from, its concurrent sessions, its
// bandwidth. A refusal answers the client (530 for where it comes from,
// 421 for too many sessions) and ends the session; the error names the
// rule (the login event's cause).
func (s *session) applyLimits(pol *vfs.Policy) error {
	if d := pol.CheckSource(s.clientIP, s.lst.Name); !d.Allowed {
		s.be.quit()
		_ = s.reply(ftp.StatusNotLoggedIn, "Login not allowed from here.")
		return s.errorf("access: not from this address or listener: %s", d.Rule)
	}
	if pol.MaxSessions > 0 && s.ticket != nil && s.ticket.UserSessions() > pol.MaxSessions {
		s.be.quit()
		_ = s.reply(ftp.StatusNotAvailable, "Too many sessions for this user.")
		return s.errorf("access: profile %s: more than max_sessions %d", pol.Profile, pol.MaxSessions)
	}
	if bw := pol.Bandwidth; bw > 0 {
		if g := s.env.cfg.Limits.SessionBandwidth; g > 0 && g < bw {
			bw = g
		}
		s.throttle = policy.NewThrottle(policy.Limits{SessionBandwidth: bw}.NewSessionLimiter(), s.env.bandwidth)
	}
	return nil
}
