package proxy

import (
	"context"
	"net"
	"net/netip"

	"github.com/ftpsgate/ftpsgate/auth"
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

// Dialer opens the gateway's connections to the backend: control
// connections, data connections and readiness probes. local, when valid, is
// the address to dial from: data connections come from the control
// connection's local address, as backends that check it (vsftpd) require.
type Dialer interface {
	DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error)
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
