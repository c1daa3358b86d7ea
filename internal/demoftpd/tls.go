package demoftpd

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	ftpserver "goftp.io/server/v2"
)

// Values of Config.TLSMode.
const (
	// TLSExplicit starts in plain text and secures the control connection
	// with AUTH TLS (RFC 4217).
	TLSExplicit = "explicit"
	// TLSImplicit speaks TLS from the first byte of the control connection.
	TLSImplicit = "implicit"
)

// handshakeTimeout bounds every TLS handshake, control or data.
const handshakeTimeout = 10 * time.Second

// Reply texts taken from vsftpd, so that the gateway meets what it will meet
// in production.
const (
	msgLoginNeedsTLS = "Non-anonymous sessions must use encryption."
	msgDataNeedsTLS  = "Data connections must be encrypted."
	msgDataTLSFailed = "SSL connection failed"
	msgReuseRequired = "SSL connection failed; session reuse required: see require_ssl_reuse option in vsftpd.conf man page"
)

var (
	errDataTLS     = errors.New("data connection TLS handshake failed")
	errNoReuse     = errors.New("data connection did not resume the control connection's TLS session")
	errDataConn    = errors.New("data connection failed")
	errControlTLS  = errors.New("control connection TLS handshake failed")
	errTLSRequired = errors.New("TLS fields set without Config.TLS")
)

// tlsMode is Config.TLSMode once checked.
type tlsMode int

const (
	tlsOff tlsMode = iota
	tlsExplicit
	tlsImplicit
)

func (m tlsMode) String() string {
	switch m {
	case tlsExplicit:
		return TLSExplicit
	case tlsImplicit:
		return TLSImplicit
	}
	return "off"
}

// tlsSettings is the checked TLS part of Config.
type tlsSettings struct {
	mode         tlsMode
	config       *tls.Config // nil when mode is tlsOff
	requireTLS   bool
	requireReuse bool
}

func (c Config) tlsMode() (tlsMode, error) {
	if c.TLS == nil {
		if c.TLSMode != "" || c.RequireTLS || c.RequireSessionReuse {
			return tlsOff, errTLSRequired
		}
		return tlsOff, nil
	}
	switch strings.ToLower(strings.TrimSpace(c.TLSMode)) {
	case "", TLSExplicit:
		return tlsExplicit, nil
	case TLSImplicit:
		return tlsImplicit, nil
	}
	return tlsOff, fmt.Errorf("TLSMode %q: want %q or %q", c.TLSMode, TLSExplicit, TLSImplicit)
}

func (c Config) validateTLS() error {
	if _, err := c.tlsMode(); err != nil {
		return err
	}
	if t := c.TLS; t != nil && len(t.Certificates) == 0 && t.GetCertificate == nil && t.GetConfigForClient == nil {
		return errors.New("TLS: no certificate")
	}
	return nil
}

// tlsSettings returns the checked settings; Validate has accepted c.
func (c Config) tlsSettings() tlsSettings {
	mode, _ := c.tlsMode()
	if mode == tlsOff {
		return tlsSettings{}
	}
	return tlsSettings{
		mode:         mode,
		config:       c.TLS.Clone(),
		requireTLS:   c.RequireTLS,
		requireReuse: c.RequireSessionReuse,
	}
}

// connConfig returns the TLS config of one control connection and its data
// connections: a clone with a session ticket key of its own, so that a data
// connection can only resume a session of its own control connection (Go
// keeps TLS 1.2 and 1.3 sessions in the tickets). Nil without TLS.
func (t tlsSettings) connConfig() *tls.Config {
	if t.mode == tlsOff {
		return nil
	}
	cfg := t.config.Clone()
	var key [32]byte
	rand.Read(key[:]) // never fails (crypto/rand, Go 1.24+)
	cfg.SetSessionTicketKeys([][32]byte{key})
	return cfg
}

// serverHandshake runs the server side of a TLS handshake within handshakeTimeout.
func serverHandshake(raw net.Conn, tc *tls.Conn) error {
	if err := raw.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	if err := tc.Handshake(); err != nil {
		return err
	}
	return raw.SetDeadline(time.Time{})
}

// handshake secures the control connection; readLoop calls it.
func (c *ctrlConn) handshake(tc *tls.Conn) error {
	if err := serverHandshake(c.Conn, tc); err != nil {
		c.log.Debug().Err(err).Msg("control connection TLS handshake failed")
		return fmt.Errorf("%w: %w", errControlTLS, err)
	}
	st := tc.ConnectionState()
	c.log.Debug().Str(fieldTLSVersion, tls.VersionName(st.Version)).Bool(fieldResumed, st.DidResume).
		Msg("control connection secured")
	return nil
}

// isTLS reports whether the control connection is secured.
func (c *ctrlConn) isTLS() bool {
	_, ok := c.currentWire().(*tls.Conn)
	return ok
}

// awaitsAuth reports whether line is an AUTH command that cmdAuth will
// answer with a handshake or a refusal, which readLoop must wait for before
// it reads on. It splits the line as goftp does (Session.parseLine).
func (c *ctrlConn) awaitsAuth(line []byte) bool {
	if c.s.tls.mode != tlsExplicit || c.isTLS() {
		return false
	}
	name, _, _ := strings.Cut(strings.Trim(string(line), "\r\n"), " ")
	return strings.ToUpper(name) == "AUTH"
}

// startTLS waits for cmdAuth's decision on the AUTH line readLoop just
// handed on and, after a 234, runs the handshake. Bytes already buffered in
// br belong to the handshake. It returns nil, nil when AUTH was refused.
func (c *ctrlConn) startTLS(br *bufio.Reader) (*tls.Conn, error) {
	var upgrade bool
	select {
	case upgrade = <-c.authDone:
	case <-c.done:
		return nil, net.ErrClosed
	}
	if !upgrade {
		return nil, nil
	}
	tc := tls.Server(&bufferedConn{Conn: c.Conn, r: br}, c.tlsConf)
	if err := c.handshake(tc); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.wire = tc
	c.mu.Unlock()
	return tc, nil
}

// bufferedConn reads what a bufio.Reader holds before the connection itself.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// tlsCommands returns the commands that differ with TLS: AUTH, PBSZ, PROT,
// and USER/PASS when RequireTLS. Nil without TLS (goftp's answer 550).
func (s *Server) tlsCommands(goftp map[string]ftpserver.Command) map[string]ftpserver.Command {
	if s.tls.mode == tlsOff {
		return nil
	}
	cmds := map[string]ftpserver.Command{
		"AUTH": command{noAuth: true, run: cmdAuth},
		"PBSZ": command{noAuth: true, needParam: true, run: cmdPbsz},
		"PROT": command{noAuth: true, needParam: true, run: cmdProt},
	}
	if s.tls.requireTLS {
		for _, name := range []string{"USER", "PASS"} {
			cmds[name] = loginCommand{goftpCommand{goftp[name]}}
		}
	}
	return cmds
}

// cmdAuth answers AUTH (RFC 2228, RFC 4217 section 4) as vsftpd does; readLoop
// waits for its decision in explicit mode.
func cmdAuth(c *ctrlConn, sess *ftpserver.Session, param string) {
	upgrade := false
	if c.s.tls.mode == tlsExplicit && !c.isTLS() {
		defer func() { c.authDone <- upgrade }()
	}
	if c.isTLS() {
		sess.WriteMessage(replyBadSequence, "Already using TLS")
		return
	}
	switch mech := strings.ToUpper(strings.TrimSpace(param)); mech {
	case "TLS", "TLS-C", "SSL", "TLS-P":
		sess.WriteMessage(replyAuthOK, "Proceed with negotiation.")
		upgrade = true
		c.protect = mech == "SSL" || mech == "TLS-P"
	default:
		sess.WriteMessage(replyParamNotImpl, "Unknown AUTH type.")
	}
}

// cmdPbsz answers PBSZ (RFC 4217 section 8): the buffer size is always 0.
func cmdPbsz(c *ctrlConn, sess *ftpserver.Session, _ string) {
	if !c.isTLS() {
		sess.WriteMessage(replyBadSequence, "PBSZ needs a secure connection.")
		return
	}
	sess.WriteMessage(replyOK, "PBSZ=0")
}

// cmdProt answers PROT (RFC 4217 section 9): C or P.
func cmdProt(c *ctrlConn, sess *ftpserver.Session, param string) {
	if !c.isTLS() {
		sess.WriteMessage(replyBadSequence, "PROT needs a secure connection.")
		return
	}
	switch strings.ToUpper(strings.TrimSpace(param)) {
	case "P":
		c.protect = true
		sess.WriteMessage(replyOK, "PROT now Private.")
	case "C":
		c.protect = false
		sess.WriteMessage(replyOK, "PROT now Clear.")
	case "S", "E":
		sess.WriteMessage(replyProtNotSupported, "PROT not supported.")
	default:
		sess.WriteMessage(replyParamNotImpl, "PROT not recognised.")
	}
}

// loginCommand is goftp's USER or PASS, refused before AUTH TLS.
type loginCommand struct{ goftpCommand }

func (l loginCommand) Execute(sess *ftpserver.Session, param string) {
	c := connOf(sess)
	if c != nil && !c.isTLS() {
		c.clearState()
		sess.WriteMessage(replyNotLoggedIn, msgLoginNeedsTLS)
		return
	}
	l.goftpCommand.Execute(sess, param)
}

// protectData secures a data connection when PROT P is in force: the server
// side of the handshake, then, with RequireSessionReuse, the check that it
// resumed a session of this control connection (only its own ticket key can
// open the ticket). On errNoReuse the TLS connection is already closed.
func (c *ctrlConn) protectData(conn net.Conn) (net.Conn, error) {
	if !c.protect {
		return conn, nil
	}
	tc := tls.Server(conn, c.tlsConf)
	if err := serverHandshake(conn, tc); err != nil {
		return nil, fmt.Errorf("%w: %w", errDataTLS, err)
	}
	st := tc.ConnectionState()
	c.log.Debug().Str(fieldTLSVersion, tls.VersionName(st.Version)).Bool(fieldResumed, st.DidResume).
		Msg("data connection secured")
	if c.s.tls.requireReuse && !st.DidResume {
		tc.Close()
		return nil, errNoReuse
	}
	return &dataConn{Conn: tc}, nil
}

// needProtection answers 521 when RequireTLS and PROT P is not in force.
func (c *ctrlConn) needProtection(sess *ftpserver.Session) bool {
	if c.s.tls.requireTLS && !c.protect {
		c.failBeforeTransfer(sess, replyNeedProtection, msgDataNeedsTLS)
		return false
	}
	return true
}

// dataConn marks the errors of a TLS data connection, which are not all
// *net.OpError, so that transfer tells them from file errors.
type dataConn struct{ net.Conn }

func (d *dataConn) Read(p []byte) (int, error) {
	n, err := d.Conn.Read(p)
	return n, markDataErr(err)
}

func (d *dataConn) Write(p []byte) (int, error) {
	n, err := d.Conn.Write(p)
	return n, markDataErr(err)
}

func markDataErr(err error) error {
	if err == nil || err == io.EOF { // io.Copy wants io.EOF itself
		return err
	}
	return fmt.Errorf("%w: %w", errDataConn, err)
}
