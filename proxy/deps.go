package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// Option gives the Server a collaborator instead of the one it would build
// itself. cmd/ftpsgate, the composition root, passes them; tests plug in
// their own.
type Option func(*Server)

// WithAuthenticator decides logins (default: auth.Passthrough, the backend
// decides).
func WithAuthenticator(a auth.Authenticator) Option { return func(s *Server) { s.auth = a } }

// WithDialer opens the connections to the backend (default: TCP with
// net.Dialer). The reverse-connect tunnel will plug in here.
func WithDialer(d Dialer) Option { return func(s *Server) { s.dialer = d } }

// WithTunnel names a Dialer that backends with Via: name use instead of
// the default dialer (a group of reverse-connect agents). New refuses a
// backend whose Via names no tunnel.
func WithTunnel(name string, d Dialer) Option {
	return func(s *Server) {
		if s.tunnels == nil {
			s.tunnels = map[string]Dialer{}
		}
		s.tunnels[name] = d
	}
}

// WithAdmission decides which connections get a session (connection rate,
// sessions per address, per user, in all). Default: policy.NewAdmission
// with Config.Limits and the ban list, when that is a *policy.Defender.
func WithAdmission(a Admission) Option { return func(s *Server) { s.admission = a } }

// WithBans is the ban list: it counts offences and bans; Shutdown closes
// it. Default: policy.NewDefender with Config.Bans. A ban store that is not a
// *policy.Defender needs WithAdmission too, for admission to refuse the
// addresses it bans.
func WithBans(b Bans) Option { return func(s *Server) { s.bans = b } }

// WithCertificates serves the certificate certs gives. Default:
// policy.NewCertSource with Config.TLS (see NewCertificates).
func WithCertificates(c Certificates) Option { return func(s *Server) { s.certs = c } }

// WithAccess confines sessions: after each login, r names the user's
// virtual root (nil: unconfined, the session relays paths as they are).
// *vfs.Access is one. Default: none, no session is confined.
func WithAccess(r AccessResolver) Option { return func(s *Server) { s.access = r } }

// AccessResolver gives the policy that confines a user (with the groups
// the authenticator named), or nil to leave the user unconfined. An error
// refuses the session.
type AccessResolver interface {
	For(user string, groups []string) (*vfs.Policy, error)
}

// Admission is what a session asks when it starts: whether the client may
// have a session (the *policy.Ticket it returns is released at the end and
// told about the login), how fast it may send commands, and whether its
// address is exempt from the limits. *policy.Admission is one.
type Admission interface {
	Admit(ip netip.Addr) (*policy.Ticket, error)
	CommandLimiter() *rate.Limiter // nil: unlimited
	Exempt(ip netip.Addr) bool
}

// Bans is the ban store: Record counts an offence and reports whether the
// address is now banned; Subscribe tells the gateway of every ban and
// unban (it ends a banned address's sessions, logs and emits events);
// Close saves what must survive a restart. *policy.Defender is one; the
// fleet's shared store will be another.
type Bans interface {
	Record(ip netip.Addr, kind string) (banned bool)
	Subscribe(func(policy.BanEvent))
	Close() error
}

// Certificates gives the served certificate: to TLS handshakes
// (GetCertificate), to monitoring (NotAfter), and again after SIGHUP
// (Reload; an error keeps the current one). *policy.CertSource is one.
//
// Two optional methods are used when present: Subscribe(func(policy.CertEvent))
// (reloads and expiry, logged and emitted by the gateway) and
// Run(context.Context) (a watcher, run from Start until shutdown).
type Certificates interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	NotAfter() time.Time
	Reload() error
}

// NewCertificates is the default Certificates for cfg: its tls.cert_file
// and key_file, or a generated self-signed certificate (with a warning on
// log) when there are none.
func NewCertificates(cfg Config, log zerolog.Logger) (*policy.CertSource, error) {
	src, generated, err := policy.NewCertSource(cfg.TLS, listenerHosts(cfg.Listeners))
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if generated {
		log.Warn().Msg("no tls.cert_file/key_file configured: serving a generated self-signed certificate; clients must be told to trust it")
	}
	return src, nil
}

// Dialer opens the gateway's connections to the backend: control
// connections, data connections and readiness probes. local, when valid, is
// the address to dial from: data connections come from the control
// connection's local address, as backends that check it (vsftpd) require.
type Dialer interface {
	DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error)
}

// DataDialer is a Dialer that opens a session's data connections along its
// control connection's path (a tunnel: through the agent that carries it,
// which the control connection's local address alone may not name). The
// session uses DialData, when its backend's Dialer has it, for every data
// connection.
type DataDialer interface {
	DialData(ctx context.Context, address string, control net.Conn) (net.Conn, error)
}

// tcpDialer is the default Dialer.
type tcpDialer struct{}

func (tcpDialer) DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error) {
	var d net.Dialer
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return d.DialContext(ctx, "tcp", address)
}

// dialerFor is the Dialer for connections to b: the tunnel its Via names,
// or def. New has checked that the tunnel exists.
func dialerFor(def Dialer, tunnels map[string]Dialer, b *Backend) Dialer {
	if b.Via != "" {
		if d, ok := tunnels[b.Via]; ok {
			return d
		}
	}
	return def
}

// checkTunnels reports a backend whose Via names no tunnel.
func checkTunnels(tunnels map[string]Dialer, b *Backend) error {
	if b.Via == "" {
		return nil
	}
	if _, ok := tunnels[b.Via]; !ok {
		return fmt.Errorf("proxy: backend %s: via %q: no such tunnel", b.Address, b.Via)
	}
	return nil
}
