package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ftpsgate/ftpsgate/eventlog"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Reasons a session ends. They are logged, never sent as they are.
var (
	errClientQuit    = errors.New("client sent QUIT")
	errIdle          = errors.New("idle timeout")
	errShuttingDown  = errors.New("gateway shutting down")
	errBackendLost   = errors.New("backend connection lost")
	errBackendDown   = errors.New("backend unavailable")
	errPipelinedAuth = errors.New("plaintext pipelined after AUTH")
)

// writeTimeout bounds every write of a control reply.
const writeTimeout = 30 * time.Second

// session is one client control connection and, once USER arrives, its
// backend control connection. Only the session goroutine (serve) writes to
// either control connection.
type session struct {
	env      *sessionEnv // the gateway, as far as a session may see it
	id       string
	lst      Listener
	log      zerolog.Logger
	ctx      context.Context // cancelled at the end of the grace period
	start    time.Time
	clientIP netip.Addr // the client's address, as seen on the control connection
	localIP  netip.Addr // the address the client connected to

	raw     net.Conn    // the client's TCP connection
	conn    net.Conn    // raw, or the TLS connection over it
	tls     *tls.Conn   //
	tlsConf *tls.Config // serves the control and data connections of this session
	book    sessionBook // the live sessions, for tls.data_session_reuse: user
	foreign foreignTicket
	r       *ftp.Reader
	cmds    *puller[ftp.Command]
	wg      sync.WaitGroup // the reader goroutines

	pbsz     bool
	prot     policy.Protection
	userSent bool
	user     string
	groups   []string // the authenticator's, for the transfer filters
	// pendingPass is a PASS the authenticator accepted but for the
	// one-time code it asked for with 332: ACCT completes it. Never logged.
	pendingPass string
	loggedIn    bool
	epsvAll     bool
	optsUTF8    bool
	host        string
	deferred    []ftp.Command // commands that arrived during a transfer
	leaving     bool          // shutdown asked: leave after the running transfer
	bytesUp     int64
	bytesDown   int64
	feat        *ftp.Reply  // merged FEAT after login, cached
	rest        string      // the last REST's argument, for the next transfer's log
	vroot       confinement // the virtual root (WithAccess): see paths.go
	hash        hashState   // HASH and XSHA256: see hashcmd.go

	be      *backend
	pending *dataSetup

	ticket   *policy.Ticket   // admission: released at the end
	cmdLimit *rate.Limiter    // commands per second; nil: unlimited
	throttle *policy.Throttle // data bandwidth; nil: unlimited

	infoMu     sync.Mutex // guards what info and ev read from other goroutines
	shown      SessionInfo
	evHost     string // HOST's argument, for events
	evBalancer string // the balancer's address, for events (PROXY header)

	stop sessionStop // a ban ends the session: see bans.go

	started  bool        // admitted: SessionStarted was emitted
	cmd      ftp.Command // the command being handled, logged once its reply is known
	cmdOpen  bool        //
	lastCode int         // the last reply code sent to the client
}

// info is a snapshot for the admin API.
func (s *session) info() SessionInfo {
	s.infoMu.Lock()
	defer s.infoMu.Unlock()
	return s.shown
}

func (s *session) updateInfo(f func(*SessionInfo)) {
	s.infoMu.Lock()
	f(&s.shown)
	s.infoMu.Unlock()
}

func newSessionID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newSession(env *sessionEnv, conn net.Conn, l Listener) *session {
	s := &session{
		env:   env,
		id:    newSessionID(),
		lst:   l,
		start: time.Now(),
		raw:   conn,
		conn:  conn,
		prot:  policy.ProtClear,
		book:  env.book,
	}
	s.initStop()
	s.cmds = newPuller[ftp.Command](&s.wg)
	s.log = env.log.With().Str(fieldSession, s.id).Str(fieldClient, conn.RemoteAddr().String()).Str(fieldListener, l.Name).Logger()
	s.shown = SessionInfo{ID: s.id, Client: conn.RemoteAddr().String(), Listener: l.Name, Started: s.start}
	return s
}

// admit asks the connection limits and the ban list whether this client may
// have a session. A refusal is one 421 line, before any TLS work.
func (s *session) admit() error {
	if err := s.gateClosed(); err != nil {
		return err
	}
	t, err := s.env.admission.Admit(s.clientIP)
	if err != nil {
		text := "Service not available, closing control connection."
		switch {
		case errors.Is(err, policy.ErrBanned):
			text = "Service not available: your address is banned."
		case errors.Is(err, policy.ErrConnRate):
			text = "Too many connections from your address: slow down."
		case errors.Is(err, policy.ErrTooManyFromIP):
			text = "Too many sessions from your address."
		case errors.Is(err, policy.ErrTooManyPreLogin):
			text = "Too many sessions from your address that have not logged in."
		case errors.Is(err, policy.ErrTooManySessions):
			text = "Too many sessions: try again later."
		case errors.Is(err, policy.ErrStoreDown):
			text = "Service not available: try again later."
		}
		s.emit(events.ConnectionRefused{Session: s.ev(), Reason: refusedReason(err), Err: err})
		_ = s.raw.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ftp.WriteReply(s.raw, ftp.NewReply(ftp.StatusNotAvailable, text))
		return s.errorf("%w", err)
	}
	s.ticket = t
	s.started = true
	s.emit(events.SessionStarted{Session: s.ev(), Time: s.start, LocalAddr: s.raw.LocalAddr().String()})
	s.cmdLimit = s.env.admission.CommandLimiter()
	s.throttle = policy.NewThrottle(s.env.cfg.Limits.NewSessionLimiter(), s.env.bandwidth)
	return nil
}

// abuse counts a protocol abuse of kind against the client; it reports
// whether the client is now banned, and then the session must end.
func (s *session) abuse(kind string) bool {
	if s.env.bans.Record(s.clientIP, kind) {
		s.log.Warn().Str("kind", kind).Msg("client banned: closing")
		return true
	}
	return false
}

var errBanned = errors.New("client banned")

// setup reads the PROXY header if the listener expects one, and learns the
// client's and the gateway's addresses.
func (s *session) setup() error {
	if s.lst.ProxyProtocol.Enabled {
		pc, err := readProxyHeader(s.raw, s.lst.ProxyProtocol, s.env.cfg.Timeouts.handshake())
		if err != nil {
			s.emit(events.ConnectionRefused{Session: s.ev(), Reason: refusedReason(err), Err: err})
			return s.errorf("%w", err)
		}
		s.raw, s.conn = pc, pc
		s.log = s.log.With().Str(fieldClient, pc.RemoteAddr().String()).Str("balancer", pc.(*proxiedConn).Conn.RemoteAddr().String()).Logger()
		s.updateInfo(func(i *SessionInfo) { i.Client = pc.RemoteAddr().String() })
		s.infoMu.Lock()
		s.evBalancer = pc.(*proxiedConn).Conn.RemoteAddr().String()
		s.infoMu.Unlock()
	}
	if ap, err := netip.ParseAddrPort(s.raw.RemoteAddr().String()); err == nil {
		s.clientIP = ap.Addr().Unmap()
	}
	s.publishIP()
	if ap, err := netip.ParseAddrPort(s.raw.LocalAddr().String()); err == nil {
		s.localIP = ap.Addr().Unmap()
	}
	s.tlsConf = s.env.tlsConfs[s.lst.Name]
	s.bindTLS()
	s.r = ftp.NewReader(s.conn)
	return nil
}

// errorf wraps an error with the session id.
func (s *session) errorf(format string, args ...any) error {
	return fmt.Errorf("session %s: "+format, append([]any{s.id}, args...)...)
}

func (s *session) serve() {
	defer s.releaseStop()
	reason := s.run()
	s.finish(reason)
}

// run is the control loop. It returns why the session ended.
func (s *session) run() error {
	if err := s.setup(); err != nil {
		return err
	}
	if err := s.admit(); err != nil {
		return err
	}
	if s.lst.TLS == TLSImplicit {
		if err := s.handshake(); err != nil {
			// Confused plaintext clients land here: say nothing, log once.
			return err
		}
	}
	if err := s.reply(ftp.StatusReady, s.env.cfg.greeting()); err != nil {
		return err
	}
	for {
		cmd, err := s.nextCommand()
		switch {
		case errors.Is(err, ftp.ErrLineTooLong), errors.Is(err, ftp.ErrMalformedCommand):
			if err := s.badLine(err); err != nil {
				return err
			}
			continue
		case errors.Is(err, errIdle):
			_ = s.reply(ftp.StatusNotAvailable, "Idle timeout, closing control connection.")
			return err
		case errors.Is(err, errLoginTimeout):
			s.log.Warn().Float64("login_timeout_seconds", s.env.cfg.Timeouts.login().Seconds()).Msg("no login in time: closing")
			_ = s.reply(ftp.StatusNotAvailable, "Login timeout, closing control connection.")
			return err
		case errors.Is(err, errShuttingDown):
			_ = s.reply(ftp.StatusNotAvailable, "Service shutting down, closing control connection.")
			return err
		case errors.Is(err, errBanned):
			return s.leaveBanned()
		case err != nil:
			return err
		}
		s.logCommand(cmd)
		if s.cmdLimit != nil {
			// Too fast: slowed, not closed.
			if err := s.cmdLimit.Wait(s.ctx); err != nil {
				if s.banned() {
					return s.leaveBanned()
				}
				return s.errorf("%w", errShuttingDown)
			}
		}
		err = s.dispatch(cmd)
		s.commandDone()
		if err != nil {
			return err
		}
		if s.leaving {
			_ = s.reply(ftp.StatusNotAvailable, "Service shutting down, closing control connection.")
			return errShuttingDown
		}
	}
}

// reply writes one reply to the client.
func (s *session) reply(code int, text string) error {
	return s.send(ftp.NewReply(code, text))
}

func (s *session) send(r ftp.Reply) error {
	return s.write(s.hideRoot(r))
}

// write sends r as it is (send hides a confined session's root first).
func (s *session) write(r ftp.Reply) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	s.lastCode = r.Code
	if err := ftp.WriteReply(s.conn, r); err != nil {
		return s.errorf("write reply: %w", err)
	}
	return nil
}

// handshake runs the client-side TLS handshake on the control connection.
func (s *session) handshake() error {
	tc := tls.Server(s.raw, s.tlsConf)
	ctx, cancel := context.WithTimeout(s.ctx, s.env.cfg.Timeouts.handshake())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.log.Warn().Err(err).Msg("client TLS handshake failed")
		s.emit(events.TLSHandshake{Session: s.ev(), Err: err})
		// A connection closed before its first byte is a balancer's health
		// check, not an attack.
		if !errors.Is(err, io.EOF) {
			s.abuse(policy.KindTLSHandshake)
		}
		return s.errorf("client TLS handshake: %w", err)
	}
	st := tc.ConnectionState()
	s.emit(events.TLSHandshake{Session: s.ev(), OK: true, Version: st.Version, Suite: st.CipherSuite})
	s.log.Debug().Str(fieldTLS, tls.VersionName(st.Version)).Str(fieldSuite, tls.CipherSuiteName(st.CipherSuite)).Msg("client TLS established")
	s.tls = tc
	s.conn = tc
	s.r = ftp.NewReader(tc)
	return nil
}

// finish tears the session down and writes the session-end line.
func (s *session) finish(reason error) {
	s.commandDone()
	if s.ticket != nil {
		s.ticket.Release()
	}
	s.unbind()
	s.closePending()
	if s.be != nil {
		s.releaseBackend()
		s.be.close()
	}
	_ = s.conn.Close()
	_ = s.raw.Close()
	s.wg.Wait()

	end := events.SessionEnded{Session: s.ev(), Duration: time.Since(s.start), BytesUp: s.bytesUp, BytesDown: s.bytesDown, Reason: reasonText(reason)}
	if s.tls != nil {
		st := s.tls.ConnectionState()
		end.TLSVersion, end.TLSSuite = st.Version, st.CipherSuite
		if len(st.PeerCertificates) > 0 {
			c := st.PeerCertificates[0]
			sum := sha256.Sum256(c.Raw)
			end.ClientCertSubject, end.ClientCertSHA256 = c.Subject.String(), hex.EncodeToString(sum[:])
		}
	}
	if s.started {
		s.emit(end) // the log consumer writes its line
		return
	}
	// Refused before it started: no event, the line only.
	eventlog.New(s.env.log).Emit(end)
}

func reasonText(err error) string {
	switch {
	case err == nil:
		return "closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout: " + err.Error()
	}
	return err.Error()
}
