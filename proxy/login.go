package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Login:
//
//   - USER is checked at the edge (TLS first, anonymous, client certificate)
//     and answered 331 by the gateway itself: nothing reaches the backend.
//   - PASS asks the Server's authenticator (package auth). Passthrough, the
//     default, leaves the decision to the backend; an authenticator that
//     decides at the edge also names the backend credentials, and its user
//     is counted before the backend is dialled.
//   - Then the backend is dialled and sent USER and PASS. A session that
//     never sends a password never holds a backend connection, so
//     password-less sessions cannot hoard the backend's per-address slots
//     (vsftpd's max_per_ip counts the gateway's one address).
//   - Only a successful login counts the session for its user
//     (limits.max_sessions_per_user) and takes it out of its address's
//     pre-login count: knowing a user name is not enough to lock that user
//     out.

// errLoginTimeout: the session did not log in within timeouts.login of
// connecting.
var errLoginTimeout = errors.New("login timeout")

// tlsRequired says whether USER and PASS must wait for AUTH TLS: unless the
// listener allows cleartext logins, and always when client certificates are
// required.
func (s *session) tlsRequired() bool {
	return s.tls == nil && (!s.lst.AllowCleartext || s.env.cfg.TLS.ClientAuth == policy.ClientAuthRequire)
}

func (s *session) handleUSER(cmd ftp.Command) error {
	if s.tlsRequired() {
		s.log.Warn().Msg("USER before AUTH TLS refused")
		s.emit(events.Login{Session: s.ev(), Result: events.LoginRefused, Reason: "tls_required", Code: ftp.StatusNotLoggedIn})
		return s.reply(ftp.StatusNotLoggedIn, "TLS required: send AUTH TLS first (RFC 4217).")
	}
	if s.loggedIn {
		return s.reply(ftp.StatusBadSequence, "Already logged in.")
	}
	s.user, s.userSent = "", false
	user := strings.TrimSpace(cmd.Arg)
	if user == "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, "USER needs a user name.")
	}
	if err := s.env.cfg.Login.CheckUser(user); err != nil {
		s.log.Warn().Str(fieldUser, user).Msg("anonymous login refused")
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: "anonymous", Code: ftp.StatusNotLoggedIn})
		return s.reply(ftp.StatusNotLoggedIn, "Anonymous login is not allowed.")
	}
	if err := s.env.cfg.TLS.CheckCertUser(s.clientCert(), user); err != nil {
		s.log.Warn().Err(err).Str(fieldUser, user).Msg("USER does not match the client certificate")
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: "client_certificate", Code: ftp.StatusNotLoggedIn})
		return s.reply(ftp.StatusNotLoggedIn, "User does not match the client certificate.")
	}
	s.user, s.userSent = user, true
	return s.reply(ftp.StatusNeedPassword, "Password required.")
}

// loginEv is the session's event part with the user being logged in.
func (s *session) loginEv(user string) events.Session {
	e := s.ev()
	e.User = user
	return e
}

// clientCert returns the verified client certificate, if any.
func (s *session) clientCert() *x509.Certificate {
	if s.tls == nil {
		return nil
	}
	if certs := s.tls.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0]
	}
	return nil
}

func (s *session) handlePASS(cmd ftp.Command) error {
	if s.tlsRequired() {
		return s.reply(ftp.StatusNotLoggedIn, "TLS required: send AUTH TLS first (RFC 4217).")
	}
	if s.loggedIn {
		return s.reply(ftp.StatusBadSequence, "Already logged in.")
	}
	if !s.userSent {
		return s.reply(ftp.StatusBadSequence, "Login with USER first.")
	}
	log := s.log.With().Str(fieldUser, s.user).Logger()
	res, err := s.authenticate(cmd.Arg)
	switch {
	case errors.Is(err, auth.ErrDenied):
		return s.loginFailed(log, ftp.NewReply(ftp.StatusNotLoggedIn, "Login incorrect."), "denied at the edge", err)
	case err != nil:
		log.Error().Err(err).Msg("authenticator unavailable")
		s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginRefused, Reason: "authenticator unavailable", Code: ftp.StatusNotAvailable})
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: logins cannot be checked now, try again later.")
		return s.errorf("authenticate: %w", err)
	}
	if !res.Delegated {
		// Decided at the edge: the user is counted before the backend is
		// touched.
		if err := s.countUser(log, res.User); err != nil {
			return err
		}
	}
	if s.be == nil {
		dialed := time.Now()
		be, err := s.dialBackend()
		s.emit(events.BackendDial{Session: s.ev(), Duration: time.Since(dialed), Err: err})
		if err != nil {
			s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginBackendFailed, Reason: "backend unavailable", Code: ftp.StatusNotAvailable})
			s.log.Error().Err(err).Msg("backend unavailable")
			_ = s.reply(ftp.StatusNotAvailable, "Service not available: the server behind the gateway cannot be reached.")
			return err
		}
		s.be = be
	}
	rep, err := s.ask(ftp.Command{Verb: "USER", Arg: res.Backend.User})
	if err != nil {
		return s.backendFailed(err)
	}
	if rep.Code == ftp.StatusNeedPassword {
		if rep, err = s.ask(ftp.Command{Verb: "PASS", Arg: res.Backend.Password}); err != nil {
			return s.backendFailed(err)
		}
	}
	switch {
	case rep.Code == ftp.StatusLoggedIn:
		if res.Delegated {
			if err := s.countUser(log, res.User); err != nil {
				s.be.quit()
				return err
			}
		}
		s.user, s.loggedIn = res.User, true
		s.log = log
		s.updateInfo(func(i *SessionInfo) { i.User = s.user })
		ev := s.log.Info()
		if res.Backend.User != res.User {
			ev = ev.Str("backend_user", res.Backend.User)
		}
		if len(res.Factors) > 0 {
			ev = ev.Strs("factors", res.Factors)
		}
		ev.Msg("login succeeded")
		s.emit(events.Login{Session: s.ev(), Result: events.LoginOK, Code: rep.Code})
		s.afterLogin()
	case !res.Delegated && rep.Class() == 5:
		// The gateway accepted the user, the backend refused the account it
		// was mapped to: a configuration problem, not the client's fault.
		log.Error().Int(fieldCode, rep.Code).Str("backend_user", res.Backend.User).Msg("the backend refused the mapped account")
		s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginBackendFailed, Reason: "backend refused the mapped account", Code: ftp.StatusNotAvailable})
		s.be.quit()
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: the server behind the gateway refused the login.")
		return s.errorf("backend refused the mapped account %q: %d", res.Backend.User, rep.Code)
	case rep.Code == ftp.StatusNotLoggedIn || rep.Class() == 5:
		return s.loginFailed(log, rep, "backend refused the credentials", nil)
	}
	return s.send(rep)
}

// authenticate asks the authenticator about the pending login.
func (s *session) authenticate(password string) (auth.Result, error) {
	ctx, cancel := context.WithTimeout(s.ctx, s.env.cfg.Timeouts.connect())
	defer cancel()
	return s.env.auth.Authenticate(ctx, auth.Request{
		User: s.user, Password: password, ClientIP: s.clientIP, Listener: s.lst.Name,
		ClientCert: s.clientCert(), Host: s.host,
	})
}

// countUser counts a logged-in session for user (limits.max_sessions_per_user);
// over the limit the client gets 421 and the session ends.
func (s *session) countUser(log zerolog.Logger, user string) error {
	if err := s.ticket.Login(user); err != nil {
		log.Warn().Err(err).Msg("login refused: too many sessions for this user")
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: "max_sessions_per_user", Code: ftp.StatusNotAvailable})
		_ = s.reply(ftp.StatusNotAvailable, "Too many sessions for this user.")
		return s.errorf("%w", err)
	}
	return nil
}

// loginFailed answers a refused login with rep and counts it against the
// client's address; a ban ends the session. reason is the event's.
func (s *session) loginFailed(log zerolog.Logger, rep ftp.Reply, reason string, why error) error {
	ev := log.Warn().Int(fieldCode, rep.Code)
	if why != nil {
		ev = ev.Err(why)
	}
	ev.Msg("login failed")
	s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginFailed, Reason: reason, Code: rep.Code})
	s.user, s.userSent = "", false
	if s.abuse(policy.KindLoginFailed) {
		_ = s.send(rep)
		_ = s.reply(ftp.StatusNotAvailable, "Too many failed logins: your address is banned.")
		return s.errorf("%w", errBanned)
	}
	return s.send(rep)
}
