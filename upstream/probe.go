package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// Dialer opens a connection to a backend; proxy.Dialer (TCP, or a
// reverse-connect tunnel) is one.
type Dialer interface {
	DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error)
}

// Probe is one FTP-aware check of a backend: it talks to the backend the
// way a session would, and no further than it is told.
type Probe struct {
	Address string
	Dialer  Dialer
	// Header, when set, is written first (a PROXY header for a backend
	// that expects one).
	Header func(net.Conn) error
	// TLS secures the conversation: from the first byte (Implicit), or
	// after AUTH TLS (AuthTLS). Nil: plain.
	TLS      *tls.Config
	Implicit bool
	AuthTLS  bool
	// User and Password, when User is set, log in (230 expected). The
	// password never appears in an error.
	User     string
	Password string
}

// Run probes within ctx: the connection, Header, the TLS handshake
// (Implicit), the 220 banner (through any 120), AUTH TLS and its handshake
// (AuthTLS), the login (User), then QUIT. nil: every step passed.
func (p Probe) Run(ctx context.Context) error {
	raw, err := p.Dialer.DialBackend(ctx, p.Address, netip.Addr{})
	if err != nil {
		return err
	}
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	// Cancelled (shutdown, a reload stopping the checker): a read that
	// waits on a silent backend ends now, not at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if p.Header != nil {
		if err := p.Header(raw); err != nil {
			return fmt.Errorf("PROXY header: %w", err)
		}
	}
	conn := raw
	if p.Implicit {
		if conn, err = handshake(ctx, raw, p.TLS); err != nil {
			return err
		}
	}
	r := ftp.NewReader(conn)
	rep, err := final(r)
	if err != nil {
		return fmt.Errorf("banner: %w", err)
	}
	if rep.Code != ftp.StatusReady {
		return fmt.Errorf("banner %d %s", rep.Code, replyText(rep, p.Password))
	}
	if p.AuthTLS && !p.Implicit {
		if rep, err = ask(conn, r, ftp.Command{Verb: "AUTH", Arg: "TLS"}); err != nil {
			return fmt.Errorf("AUTH TLS: %w", err)
		}
		if rep.Code != ftp.StatusAuthOK {
			return fmt.Errorf("AUTH TLS refused: %d %s", rep.Code, replyText(rep, p.Password))
		}
		if conn, err = handshake(ctx, raw, p.TLS); err != nil {
			return err
		}
		r = ftp.NewReader(conn)
	}
	if p.User != "" {
		if err := login(conn, r, p.User, p.Password); err != nil {
			return fmt.Errorf("probe login as %s: %w", p.User, err)
		}
	}
	_ = ftp.WriteCommand(conn, ftp.Command{Verb: "QUIT"})
	return nil
}

func handshake(ctx context.Context, raw net.Conn, conf *tls.Config) (net.Conn, error) {
	if conf == nil {
		return nil, fmt.Errorf("TLS handshake: no TLS configuration")
	}
	tc := tls.Client(raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// login logs in as user; the password never appears in an error.
func login(conn net.Conn, r *ftp.Reader, user, password string) error {
	rep, err := ask(conn, r, ftp.Command{Verb: "USER", Arg: user})
	if err != nil {
		return fmt.Errorf("USER: %w", err)
	}
	if rep.Code == ftp.StatusNeedPassword {
		if rep, err = ask(conn, r, ftp.Command{Verb: "PASS", Arg: password}); err != nil {
			return fmt.Errorf("PASS: %w", err)
		}
	}
	if rep.Code != ftp.StatusLoggedIn {
		return fmt.Errorf("refused: %d %s", rep.Code, replyText(rep, password))
	}
	return nil
}

// maxErrText is how much of a backend's reply text an error quotes: a
// check's error is logged and shown by the admin API, and a reply may be
// a megabyte.
const maxErrText = 200

// replyText is rep's text as an error may quote it: the password, should
// the backend echo it ("500 'PASS secret': command not understood"),
// masked, and cut to maxErrText bytes.
func replyText(rep ftp.Reply, password string) string {
	t := rep.Text()
	if password != "" {
		t = strings.ReplaceAll(t, password, "****")
	}
	if len(t) > maxErrText {
		t = strings.ToValidUTF8(t[:maxErrText], "") + "..."
	}
	return t
}

// ask sends cmd and reads its final reply.
func ask(conn net.Conn, r *ftp.Reader, cmd ftp.Command) (ftp.Reply, error) {
	if err := ftp.WriteCommand(conn, cmd); err != nil {
		return ftp.Reply{}, err
	}
	return final(r)
}

// final reads replies up to the first that is not preliminary (1xx).
func final(r *ftp.Reader) (ftp.Reply, error) {
	rep, err := r.ReadReply()
	for err == nil && rep.Preliminary() {
		rep, err = r.ReadReply()
	}
	return rep, err
}
