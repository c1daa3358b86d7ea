package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// backend is a session's control connection to the legacy server.
type backend struct {
	raw     net.Conn
	conn    net.Conn // raw, or TLS over it
	r       *ftp.Reader
	tlsConf *tls.Config // per-session config (own session cache); nil when plain
	host    netip.Addr  // the backend's address: data connections go there
	local   netip.Addr  // our side of the control connection: data connections come from there
	replies *puller[ftp.Reply]
	noEPSV  bool // the backend refused EPSV once: use PASV

	up           *upBackend              // the backend chosen; nil once released (see releaseBackend)
	data         policy.BackendDataPorts // the data ports it may name
	session      string                  // the session's id, for errors
	dialer       Dialer                  // the one that opened raw: data connections use it too
	replyTimeout time.Duration           // bounds every wait for a reply (timeouts.idle)
	lost         error                   // set once the backend is lost: see backendio.go
}

// dialBackend connects to the backend, consumes its banner and secures the
// connection as configured (RFC 4217 AUTH TLS, PBSZ 0, PROT P). Everything
// is bounded by the connect timeout.
func (s *session) dialBackend(up *upBackend) (*backend, error) {
	cfg := s.env.cfg
	deadline := time.Now().Add(cfg.Timeouts.connect())
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()

	dialer := up.dialer
	raw, err := dialer.DialBackend(ctx, up.cfg.Address, netip.Addr{})
	if err != nil {
		return nil, s.errorf("%w: backend %s: dial %s: %w", errBackendDown, up.cfg.Name, up.cfg.Address, err)
	}
	be := &backend{up: up, data: up.data, raw: raw, conn: raw, dialer: dialer, replies: newPuller[ftp.Reply](&s.wg), session: s.id, replyTimeout: cfg.Timeouts.idle()}
	if ap, err := netip.ParseAddrPort(raw.RemoteAddr().String()); err == nil {
		be.host = ap.Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(raw.LocalAddr().String()); err == nil {
		be.local = ap.Addr().Unmap()
	}
	_ = raw.SetDeadline(deadline)
	if v := up.cfg.ProxyProtocol; v != 0 {
		if err := writeProxyHeader(raw, v, s.raw.RemoteAddr(), s.raw.LocalAddr()); err != nil {
			_ = raw.Close()
			return nil, s.errorf("%w: PROXY header: %w", errBackendDown, err)
		}
	}
	if err := s.secureBackend(ctx, be); err != nil {
		_ = raw.Close()
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	s.log.Debug().Str("backend", up.cfg.Name).Str(fieldRemote, raw.RemoteAddr().String()).Str("tls", up.cfg.TLS.String()).Msg("backend connected")
	return be, nil
}

func (s *session) secureBackend(ctx context.Context, be *backend) error {
	mode := be.up.cfg.TLS
	if mode != TLSNone {
		be.tlsConf = policy.SessionConfig(be.up.tlsConfig())
	}
	if mode == TLSImplicit {
		if err := be.startTLS(ctx); err != nil {
			return s.errorf("%w: %w", errBackendDown, err)
		}
	}
	be.r = ftp.NewReader(be.conn)
	banner, err := be.ReadReply(ctx)
	for err == nil && banner.Preliminary() { // "120 ready in n minutes", then 220
		banner, err = be.ReadReply(ctx)
	}
	if err != nil {
		return s.errorf("%w: banner: %w", errBackendDown, err)
	}
	if banner.Code != ftp.StatusReady {
		return s.errorf("%w: banner %d %q", errBackendDown, banner.Code, said(banner))
	}
	if mode == TLSExplicit {
		rep, err := be.Do(ctx, ftp.Command{Verb: "AUTH", Arg: "TLS"}, nil)
		if err != nil {
			return s.errorf("%w: AUTH TLS: %w", errBackendDown, err)
		}
		if rep.Code != ftp.StatusAuthOK {
			return s.errorf("%w: backend refused AUTH TLS: %d %s", errBackendDown, rep.Code, said(rep))
		}
		if err := be.startTLS(ctx); err != nil {
			return s.errorf("%w: %w", errBackendDown, err)
		}
		be.r = ftp.NewReader(be.conn)
	}
	if mode != TLSNone {
		for _, c := range []ftp.Command{{Verb: "PBSZ", Arg: "0"}, {Verb: "PROT", Arg: "P"}} {
			rep, err := be.Do(ctx, c, nil)
			if err != nil {
				return s.errorf("%w: %s: %w", errBackendDown, c.Verb, err)
			}
			if !rep.Positive() {
				return s.errorf("%w: backend refused %s: %d %s", errBackendDown, c, rep.Code, said(rep))
			}
		}
	}
	return nil
}

// maxSaid is how much of a backend's reply an error quotes: errors end up
// in log lines and events, and a reply may be a megabyte.
const maxSaid = 200

// said is rep's text as an error quotes it, cut to maxSaid bytes.
func said(rep ftp.Reply) string {
	t := rep.Text()
	if len(t) > maxSaid {
		t = strings.ToValidUTF8(t[:maxSaid], "") + "..."
	}
	return t
}

func (be *backend) startTLS(ctx context.Context) error {
	tc := tls.Client(be.raw, be.tlsConf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("backend TLS handshake: %w", err)
	}
	be.conn = tc
	return nil
}
