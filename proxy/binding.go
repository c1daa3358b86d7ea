package proxy

import (
	"net/netip"
	"sync"

	"github.com/ftpsgate/ftpsgate/policy"
)

// sessionBook is what a session tells the gateway's list of live control
// sessions (policy.SessionRegistry, owned by the Server), and what its TLS
// config asks of it when a data connection offers another session's ticket
// (tls.data_session_reuse: user).
type sessionBook interface {
	policy.Peers
	Join(id string, addr netip.Addr) bool
	LoggedIn(id, user string)
	Leave(id string)
}

// fieldTicketSession is the control session whose TLS ticket a handshake
// offered, when it is another than the handshake's own.
const fieldTicketSession = "ticket_session"

// foreignTicket is the last ticket of another control session that this
// session's TLS config was offered, and why it did not resume it (nil: it
// did), for the data connection's log line.
type foreignTicket struct {
	mu    sync.Mutex
	owner string
	err   error
}

func (r *foreignTicket) set(owner string, err error) {
	r.mu.Lock()
	r.owner, r.err = owner, err
	r.mu.Unlock()
}

// take returns and clears the last foreign ticket; owner "" if none.
func (r *foreignTicket) take() (owner string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	owner, err = r.owner, r.err
	r.owner, r.err = "", nil
	return owner, err
}

// bindTLS binds the session's TLS config (control and data connections) to
// this control session, per tls.data_session_reuse, and lists the session
// for its siblings. Called once the client's address is known.
func (s *session) bindTLS() {
	mode := s.env.cfg.TLS.DataSessionReuse
	var peers policy.Peers
	if mode == policy.ReuseUser && s.book != nil {
		if s.book.Join(s.id, s.clientIP) {
			peers = s.book
		} else {
			s.log.Warn().Msg("too many live sessions to list this one: its data connections resume only its own TLS session")
		}
	}
	s.tlsConf = policy.BindSession(s.tlsConf, policy.Binding{
		Session: s.id, Mode: mode, Peers: peers,
		LoginWait: s.env.cfg.Timeouts.handshake(),
		Foreign: func(owner string, err error) {
			s.foreign.set(owner, err)
			if err != nil {
				s.log.Debug().Str(fieldTicketSession, owner).Err(err).Msg("TLS ticket of another session not resumed")
			}
		},
	})
}

// bindLogin tells the session list who this session is logged in as.
func (s *session) bindLogin() {
	if s.book != nil {
		s.book.LoggedIn(s.id, s.user)
	}
}

// unbind takes the session off the list: its tickets resume nowhere else.
func (s *session) unbind() {
	if s.book != nil {
		s.book.Leave(s.id)
	}
}
