package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"

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
		s.emit(events.Login{Session: s.ev(), Result: events.LoginRefused, Reason: events.LoginReasonTLSRequired, Code: ftp.StatusNotLoggedIn})
		return s.reply(ftp.StatusNotLoggedIn, "TLS required: send AUTH TLS first (RFC 4217).")
	}
	if s.loggedIn {
		return s.reply(ftp.StatusBadSequence, "Already logged in.")
	}
	s.user, s.userSent, s.pendingPass = "", false, ""
	user := strings.TrimSpace(cmd.Arg)
	if user == "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, "USER needs a user name.")
	}
	if err := s.env.cfg.Login.CheckUser(user); err != nil {
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: events.LoginReasonAnonymous, Code: ftp.StatusNotLoggedIn})
		return s.reply(ftp.StatusNotLoggedIn, "Anonymous login is not allowed.")
	}
	if err := s.env.cfg.TLS.CheckCertUser(s.verifiedClientCert(), user); err != nil {
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: events.LoginReasonCertificate, Code: ftp.StatusNotLoggedIn, Err: err})
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

// clientCert returns the certificate the client showed, if any, and
// whether it chains to the client CA: verified by the handshake, or, in
// pins mode where the handshake takes any certificate, checked here.
func (s *session) clientCert() (*x509.Certificate, bool) {
	if s.tls == nil {
		return nil, false
	}
	st := s.tls.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil, false
	}
	verified := len(st.VerifiedChains) > 0 || s.env.clientChain != nil && s.env.clientChain(st.PeerCertificates)
	return st.PeerCertificates[0], verified
}

// verifiedClientCert is the client's certificate if a CA vouches for it:
// the only kind whose names mean anything (tls.client_cert_user).
func (s *session) verifiedClientCert() *x509.Certificate {
	if c, ok := s.clientCert(); ok {
		return c
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
	s.pendingPass = ""
	return s.login(cmd.Arg, "")
}

// handleACCT completes a login the authenticator asked a one-time code for
// (332 after PASS). Once logged in, ACCT is the backend's; before, without
// a pending login, the gateway has no use for it.
func (s *session) handleACCT(cmd ftp.Command) error {
	switch {
	case s.loggedIn:
		return s.relay(cmd)
	case s.pendingPass == "":
		return s.reply(ftp.StatusBadSequence, "ACCT is only needed after 332: login with USER and PASS.")
	}
	code := strings.TrimSpace(cmd.Arg)
	if code == "" {
		return s.reply(ftp.StatusSyntaxErrorParameters, "ACCT needs the one-time code.")
	}
	pass := s.pendingPass
	s.pendingPass = ""
	return s.login(pass, code)
}

// login decides the pending USER with password (and code, from ACCT), then
// logs in to the backend.
func (s *session) login(password, code string) error {
	log := s.log.With().Str(fieldUser, s.user).Logger()
	res, err := s.authenticate(password, code)
	switch {
	case errors.Is(err, auth.ErrCodeRequired):
		s.pendingPass = password
		log.Info().Msg("password accepted, one-time code required")
		return s.reply(ftp.StatusNeedAccount, "One-time code required: send it with ACCT (or append it to the password).")
	case errors.Is(err, auth.ErrExpired):
		return s.loginFailed(ftp.NewReply(ftp.StatusNotLoggedIn, "Password expired: ask your administrator for a new one."), "password expired", err)
	case errors.Is(err, auth.ErrDenied):
		reason := auth.DenialReason(err)
		if reason == "" {
			reason = "denied at the edge"
		}
		return s.loginFailed(ftp.NewReply(ftp.StatusNotLoggedIn, "Login incorrect."), reason, err)
	case err != nil:
		s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginRefused, Reason: events.LoginReasonUnavailable, Code: ftp.StatusNotAvailable, Err: err})
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: logins cannot be checked now, try again later.")
		return s.errorf("authenticate: %w", err)
	}
	if !res.Delegated {
		// Decided at the edge: the user is counted before the backend is
		// touched.
		if err := s.countUser(res.User); err != nil {
			return err
		}
	}
	up, target, err := s.route(res)
	if err != nil {
		return err
	}
	if s.be == nil {
		be, err := s.dialRouted(up, target)
		if err != nil {
			s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginBackendFailed, Reason: events.LoginReasonBackendDown, Code: ftp.StatusNotAvailable, Err: err})
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
			if err := s.countUser(res.User); err != nil {
				s.be.quit()
				return err
			}
		}
		s.user, s.groups, s.loggedIn = res.User, res.Groups, true
		s.log = log
		s.updateInfo(func(i *SessionInfo) { i.User = s.user })
		s.afterLogin()
		if err := s.enterRoot(res.User, res.Groups); err != nil {
			s.emit(events.Login{Session: s.ev(), Result: events.LoginRefused, Reason: events.LoginReasonAccess, Code: s.lastCode, Err: err})
			return err
		}
		s.emit(events.Login{Session: s.ev(), Result: events.LoginOK, Code: rep.Code, Factors: res.Factors, BackendUser: res.Backend.User})
		if !res.Delegated {
			// The backend's own 230 may name the mapped account, which the
			// client must never learn.
			text := "Logged in as " + s.user + "."
			if res.Notice != "" {
				text += " " + res.Notice
			}
			return s.reply(ftp.StatusLoggedIn, text)
		}
	case !res.Delegated:
		// The gateway accepted the user, the backend refused the account it
		// was mapped to: a configuration problem, not the client's fault.
		s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginBackendFailed, Reason: events.LoginReasonMappedRefused, Code: ftp.StatusNotAvailable,
			BackendUser: res.Backend.User, BackendCode: rep.Code})
		s.be.quit()
		_ = s.reply(ftp.StatusNotAvailable, "Service not available: the server behind the gateway refused the login.")
		return s.errorf("backend refused the mapped account %q: %d", res.Backend.User, rep.Code)
	case rep.Code == ftp.StatusNotLoggedIn || rep.Class() == 5:
		return s.loginFailed(rep, "backend refused the credentials", nil)
	}
	return s.send(rep)
}

// authenticate asks the authenticator about the pending login, within
// what is left of timeouts.login (a throttled user waits inside it).
func (s *session) authenticate(password, code string) (auth.Result, error) {
	ctx, cancel := context.WithDeadline(s.ctx, s.start.Add(s.env.cfg.Timeouts.login()))
	defer cancel()
	cert, verified := s.clientCert()
	return s.env.auth.Authenticate(ctx, auth.Request{
		User: s.user, Password: password, Code: code, ClientIP: s.clientIP, Listener: s.lst.Name,
		ClientCert: cert, ClientCertVerified: verified, Host: s.host,
	})
}

// countUser counts a logged-in session for user (limits.max_sessions_per_user);
// over the limit the client gets 421 and the session ends.
func (s *session) countUser(user string) error {
	if err := s.ticket.Login(user); err != nil {
		reason, text := events.LoginReasonPerUser, "Too many sessions for this user."
		if errors.Is(err, policy.ErrStoreDown) {
			reason, text = events.LoginReasonStoreDown, "Service not available: try again later."
		}
		s.emit(events.Login{Session: s.loginEv(user), Result: events.LoginRefused, Reason: reason, Code: ftp.StatusNotAvailable, Err: err})
		_ = s.reply(ftp.StatusNotAvailable, text)
		return s.errorf("%w", err)
	}
	return nil
}

// loginFailed answers a refused login with rep and counts it against the
// client's address; a ban ends the session. reason is the event's.
func (s *session) loginFailed(rep ftp.Reply, reason string, why error) error {
	s.emit(events.Login{Session: s.loginEv(s.user), Result: events.LoginFailed, Reason: reason, Code: rep.Code, Err: why})
	s.user, s.userSent, s.pendingPass = "", false, ""
	if s.abuse(policy.KindLoginFailed) {
		_ = s.send(rep)
		_ = s.reply(ftp.StatusNotAvailable, "Too many failed logins: your address is banned.")
		return s.errorf("%w", errBanned)
	}
	return s.send(rep)
}
