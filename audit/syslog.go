package audit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Syslog is the syslog sink: RFC 5424 messages over UDP, TCP or TLS.
type Syslog struct {
	cfg      SyslogConfig
	hostname string
	procID   string
	tlsConf  *tls.Config

	conn      net.Conn
	broken    bool      // the last connection failed: resend the window on the next
	nextDial  time.Time // no dial before this (backoff)
	backoff   time.Duration
	window    [][]byte // the last frames written (TCP, TLS), oldest first
	truncated atomic.Int64
	sent      atomic.Int64
}

// NewSyslog checks cfg, loads its certificates and returns the sink; it
// connects on the first Write.
func NewSyslog(cfg SyslogConfig) (*Syslog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, confkey.Under("audit.syslog", err)
	}
	s := &Syslog{cfg: cfg, hostname: cfg.Hostname, procID: strconv.Itoa(os.Getpid())}
	if s.hostname == "" {
		h, err := os.Hostname()
		if err != nil || !printUSASCII(h, 255) {
			h = "-"
		}
		s.hostname = h
	}
	if cfg.network() == SyslogTLS {
		tc, err := syslogTLSConfig(&cfg)
		if err != nil {
			return nil, err
		}
		s.tlsConf = tc
	}
	return s, nil
}

func syslogTLSConfig(c *SyslogConfig) (*tls.Config, error) {
	tc, err := clientTLS("audit.syslog", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	tc.ServerName = c.ServerName
	if tc.ServerName == "" {
		host, _, _ := net.SplitHostPort(c.Address)
		tc.ServerName = host
	}
	return tc, nil
}

// Name is "syslog".
func (s *Syslog) Name() string { return "syslog" }

// Truncated is how many messages were cut at max_message.
func (s *Syslog) Truncated() int64 { return s.truncated.Load() }

// Sent is how many messages were written (resent ones included).
func (s *Syslog) Sent() int64 { return s.sent.Load() }

// Write sends one message per record, in order. An error means the
// connection failed (it is closed; the next Write reconnects, after a
// backoff that doubles while dials fail).
func (s *Syslog) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(s.cfg.writeTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return s.fail(err)
	}
	for i := range recs {
		msg, err := s.Format(&recs[i])
		if err != nil {
			return fmt.Errorf("audit: syslog: record %s: %w", recs[i].ID, err)
		}
		if s.cfg.network() == SyslogUDP {
			if _, err := s.conn.Write(msg); err != nil {
				return s.fail(err)
			}
			s.sent.Add(1)
			continue
		}
		frame := append(strconv.AppendInt(nil, int64(len(msg)), 10), ' ')
		frame = append(frame, msg...)
		if _, err := s.conn.Write(frame); err != nil {
			return s.fail(err)
		}
		s.sent.Add(1)
		s.remember(frame)
	}
	return nil
}

// remember keeps frame in the resend window.
func (s *Syslog) remember(frame []byte) {
	n := s.cfg.resend()
	if n == 0 {
		return
	}
	if len(s.window) == n {
		copy(s.window, s.window[1:])
		s.window = s.window[:n-1]
	}
	s.window = append(s.window, frame)
}

// connect makes sure there is a live connection: it checks that the
// receiver has not closed the current one (a pending EOF), dials a new one
// when needed (not before the backoff is over), and writes the resend
// window on it when the last one broke.
func (s *Syslog) connect(ctx context.Context) error {
	if s.conn != nil && s.cfg.network() != SyslogUDP {
		if err := peerGone(s.conn, time.Millisecond); err != nil {
			_ = s.fail(err)
		}
	}
	if s.conn != nil {
		return nil
	}
	if wait := time.Until(s.nextDial); wait > 0 {
		return fmt.Errorf("audit: syslog %s: down, next try in %s", s.cfg.Address, wait.Round(time.Millisecond))
	}
	conn, err := s.dial(ctx)
	if err != nil {
		s.backoff = min(max(2*s.backoff, s.cfg.backoffMin()), s.cfg.backoffMax())
		s.nextDial = time.Now().Add(s.backoff)
		return fmt.Errorf("audit: syslog %s: %w", s.cfg.Address, err)
	}
	if s.cfg.network() == SyslogTLS {
		// In TLS 1.3 the client's handshake is over before the receiver
		// has checked the client certificate: give its refusal (an
		// alert) a moment to arrive, rather than write into a
		// connection that is already refused.
		if err := peerGone(conn, tlsSettle); err != nil {
			conn.Close()
			s.backoff = min(max(2*s.backoff, s.cfg.backoffMin()), s.cfg.backoffMax())
			s.nextDial = time.Now().Add(s.backoff)
			return fmt.Errorf("audit: syslog %s: %w", s.cfg.Address, err)
		}
	}
	s.conn, s.backoff = conn, 0
	if s.broken && len(s.window) > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(s.cfg.writeTimeout())); err != nil {
			return s.fail(err)
		}
		old := s.window
		s.window = nil
		for _, f := range old {
			if _, err := conn.Write(f); err != nil {
				s.window = old
				return s.fail(err)
			}
			s.sent.Add(1)
			s.remember(f)
		}
	}
	s.broken = false
	return nil
}

func (s *Syslog) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.dialTimeout())
	defer cancel()
	switch s.cfg.network() {
	case SyslogTLS:
		d := &tls.Dialer{Config: s.tlsConf}
		return d.DialContext(ctx, "tcp", s.cfg.Address)
	case SyslogTCP:
		var d net.Dialer
		return d.DialContext(ctx, "tcp", s.cfg.Address)
	}
	var d net.Dialer
	return d.DialContext(ctx, "udp", s.cfg.Address)
}

// fail closes the connection after err and returns err wrapped.
func (s *Syslog) fail(err error) error {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.broken = true
	return fmt.Errorf("audit: syslog %s: %w", s.cfg.Address, err)
}

// peerGone returns why the receiver closed conn, or nil: a read that
// ends within wait with EOF or an error other than a timeout (a TLS alert
// says why). Syslog receivers send nothing, so any byte is ignored.
func peerGone(conn net.Conn, wait time.Duration) error {
	if err := conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	var b [256]byte
	_, err := conn.Read(b[:])
	_ = conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return errors.New("closed by the receiver")
	}
	return err
}

// Close closes the connection.
func (s *Syslog) Close() error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Format returns the RFC 5424 message of r (without the TCP framing):
// "<PRI>1 TIMESTAMP HOSTNAME ftpsgate PROCID KIND SD MSG". A message
// longer than max_message is cut there and marked with the
// STRUCTURED-DATA [truncated@32473 length="N"], and counted.
func (s *Syslog) Format(r *Record) ([]byte, error) {
	var body []byte
	var err error
	if s.cfg.format() == SyslogCEF {
		body = []byte(CEF(r, s.cfg.Version))
	} else {
		body, err = json.Marshal(r)
		if err != nil {
			return nil, err
		}
	}
	pri := s.cfg.facility()*8 + SyslogSeverity(r)
	ts := r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	if r.Time.IsZero() {
		ts = "-"
	}
	msgid := r.Kind
	if !printUSASCII(msgid, 32) {
		msgid = "-"
	}
	head := fmt.Sprintf("<%d>1 %s %s %s %s %s ", pri, ts, s.hostname, syslogAppName, s.procID, msgid)
	msg := append([]byte(head+"- "), body...)
	if len(msg) > s.cfg.maxMessage() {
		s.truncated.Add(1)
		marked := []byte(fmt.Sprintf("%s[%s length=\"%d\"] ", head, truncSD, len(msg)))
		keep := min(max(s.cfg.maxMessage()-len(marked), 0), len(body))
		for keep > 0 && keep < len(body) && !utf8.RuneStart(body[keep]) {
			keep-- // not in the middle of a character
		}
		msg = append(marked, body[:keep]...)
	}
	return msg, nil
}

// SyslogSeverity is the syslog severity of r: warning for a failure (a failed
// or refused login, an incomplete transfer, a refused command or data
// connection, a failed reload, a certificate problem, records dropped or a
// sink down) and for a content inspection finding, notice for logins, bans and reloads, info for the rest.
func SyslogSeverity(r *Record) int {
	if RecordFailed(r) || r.Inspection != nil {
		return sevWarning
	}
	switch r.Kind {
	case KindLogin, KindBan, KindUnban, KindConfigReload, KindCertificate, KindAudit:
		return sevNotice
	}
	return sevInfo
}

// RecordFailed reports whether r records a failure (see SyslogSeverity).
func RecordFailed(r *Record) bool {
	switch {
	case r.Login != nil:
		return r.Login.Result != "ok"
	case r.Transfer != nil:
		return !r.Transfer.Complete || r.Transfer.Error != "" || r.Transfer.Code >= 400
	case r.Command != nil:
		return (r.Command.Allowed != nil && !*r.Command.Allowed) || r.Command.Code >= 500
	case r.DataRefused != nil:
		return true
	case r.Inspection != nil:
		return r.Inspection.Action == "block"
	case r.Reload != nil:
		return !r.Reload.OK
	case r.Certificate != nil:
		return r.Certificate.Event != "reloaded"
	case r.Audit != nil:
		return r.Audit.Event == "dropped" || r.Audit.Event == "sink_down"
	}
	return false
}

// printUSASCII reports whether s is 1..max characters of PRINTUSASCII
// (RFC 5424: %d33-126).
func printUSASCII(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func remoteOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func remoteOrDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// syslogFacilities are the facility names of RFC 5424 section 6.2.1 (as
// syslog.conf spells them), by code.
var syslogFacilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// ParseSyslogFacility turns a facility name (local0, auth, ftp, …) or
// code (0..23) into the value of SyslogConfig.Facility; empty is local0.
func ParseSyslogFacility(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return FacilityLocal0, nil
	}
	for code, name := range syslogFacilities {
		if s == name {
			if code == 0 {
				return -1, nil // kern: Facility 0 means the default
			}
			return code, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 23 {
		if n == 0 {
			return -1, nil
		}
		return n, nil
	}
	return 0, fmt.Errorf("%q: want a facility name (local0..local7, auth, authpriv, daemon, ftp, user, …) or 0..23", s)
}
