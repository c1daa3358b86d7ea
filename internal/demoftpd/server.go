package demoftpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"
	ftpserver "goftp.io/server/v2"
	"goftp.io/server/v2/driver/file"
)

const (
	defaultUser     = "demo"
	defaultPassword = "demo"
	defaultAddress  = "127.0.0.1:0"

	serverName     = "ftpsgate demo FTP server"
	welcomeMessage = "ftpsgate demo FTP server ready (test backend, not for production)"

	// closeTimeout bounds how long Close waits for session goroutines after it
	// has closed every connection. They end in microseconds; the bound only
	// keeps a future goftp that stops writing its end-of-session log line from
	// hanging Close forever.
	closeTimeout = 10 * time.Second
)

// Config configures the demo server. The zero value of every field but Root
// means its default.
type Config struct {
	// Root is the directory served as "/". Required; it must exist.
	Root string
	// User is the only login name. Default "demo".
	User string
	// Password is User's password. Default "demo".
	Password string
	// Address is the host:port to listen on. Default "127.0.0.1:0" (a free port).
	Address string
	// PassivePorts is the inclusive range of passive data ports, e.g.
	// "40000-40100". Empty (the default) lets the kernel pick a free ephemeral
	// port for each PASV/EPSV.
	PassivePorts string
	// Logger receives goftp's log and this package's, at debug level. The zero
	// Logger discards everything.
	Logger zerolog.Logger

	// TLS turns the server into an FTPS server (see the package documentation)
	// with this configuration, which must carry a certificate. If nil (the
	// default), the server speaks plain FTP and the other TLS fields must be
	// zero. Each control connection gets its own clone of TLS with its own
	// session ticket key, so that TLS sessions resume only on the data
	// connections of the control connection that created them; a config that
	// sets WrapSession/UnwrapSession or disables tickets defeats that.
	TLS *tls.Config
	// TLSMode is TLSExplicit (AUTH TLS on the control connection, RFC 4217)
	// or TLSImplicit (TLS from the first byte). Empty means TLSExplicit.
	TLSMode string
	// RequireTLS refuses USER and PASS with 530 before AUTH TLS, and
	// transfers with 521 unless PROT P is in force, like vsftpd's
	// force_local_logins_ssl and force_local_data_ssl.
	RequireTLS bool
	// RequireSessionReuse refuses a protected data connection (522 after the
	// 150) unless its TLS handshake resumed the TLS session of its own control
	// connection, like vsftpd's require_ssl_reuse.
	RequireSessionReuse bool
}

func (c Config) user() string {
	if c.User == "" {
		return defaultUser
	}
	return c.User
}

func (c Config) password() string {
	if c.Password == "" {
		return defaultPassword
	}
	return c.Password
}

func (c Config) address() string {
	if c.Address == "" {
		return defaultAddress
	}
	return c.Address
}

// Validate reports whether c can be started: Root must be an existing
// directory and PassivePorts, if set, a valid range.
func (c Config) Validate() error {
	if c.Root == "" {
		return errors.New("demoftpd: Root is required")
	}
	fi, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("demoftpd: Root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("demoftpd: Root %q is not a directory", c.Root)
	}
	if _, err := parsePortRange(c.PassivePorts); err != nil {
		return fmt.Errorf("demoftpd: PassivePorts: %w", err)
	}
	if _, _, err := net.SplitHostPort(c.address()); err != nil {
		return fmt.Errorf("demoftpd: Address: %w", err)
	}
	if err := c.validateTLS(); err != nil {
		return fmt.Errorf("demoftpd: %w", err)
	}
	return nil
}

// Server is a running demo FTP server. Create it with Start; stop it with
// Close or by cancelling Start's context.
type Server struct {
	root  string // absolute Config.Root
	ports portRange
	log   zerolog.Logger
	ln    net.Listener
	ftp   *ftpserver.Server
	tls   tlsSettings

	stopAfterFunc func() bool
	serveDone     chan struct{}
	// sessions counts goftp session goroutines; readers our read-ahead ones.
	sessions sync.WaitGroup
	readers  sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[*ctrlConn]struct{}

	closeOnce sync.Once
	closeErr  error
}

// Start listens on cfg.Address and serves FTP in the background until Close is
// called or ctx is done. When Start returns without error, Addr accepts
// connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("demoftpd: Root: %w", err)
	}
	ports, _ := parsePortRange(cfg.PassivePorts) // checked by Validate

	s := &Server{
		root:      root,
		ports:     ports,
		tls:       cfg.tlsSettings(),
		log:       cfg.Logger.With().Str(fieldComponent, "demoftpd").Logger(),
		serveDone: make(chan struct{}),
		conns:     make(map[*ctrlConn]struct{}),
	}

	driver, err := file.NewDriver(root)
	if err != nil {
		return nil, fmt.Errorf("demoftpd: driver: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.address())
	if err != nil {
		return nil, fmt.Errorf("demoftpd: listen: %w", err)
	}
	publicIP := ""
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		publicIP = ta.IP.String()
	}
	s.ftp, err = ftpserver.NewServer(&ftpserver.Options{
		Commands:       s.commands(),
		Driver:         driver,
		Auth:           &ftpserver.SimpleAuth{Name: cfg.user(), Password: cfg.password()},
		Perm:           ftpserver.NewSimplePerm("ftp", "ftp"),
		Name:           serverName,
		PublicIP:       publicIP, // goftp's own PASV is replaced, but STAT shows it
		WelcomeMessage: welcomeMessage,
		Logger:         &goftpLogger{log: s.log, sessionEnded: s.sessions.Done},
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("demoftpd: %w", err)
	}
	s.ln = &trackingListener{Listener: ln, s: s}

	go func() {
		defer close(s.serveDone)
		// Serve returns when our listener is closed; the error says only that.
		err := s.ftp.Serve(s.ln)
		s.log.Debug().Err(err).Msg("accept loop ended")
	}()
	s.stopAfterFunc = context.AfterFunc(ctx, func() { s.Close() })
	s.log.Debug().Str(fieldAddr, ln.Addr().String()).Str(fieldRoot, root).
		Stringer(fieldTLSMode, s.tls.mode).Msg("demo FTP server listening")
	return s, nil
}

// Addr returns the address the server listens on, e.g. "127.0.0.1:40123".
func (s *Server) Addr() string {
	return s.ln.Addr().String()
}

// Close stops listening, closes every session and its data connections (a
// running transfer is cut without a reply), and waits for the server's
// goroutines. It is safe to call more than once and from several goroutines.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.shutdown() })
	return s.closeErr
}

func (s *Server) shutdown() error {
	s.stopAfterFunc()

	s.mu.Lock()
	s.closed = true
	conns := make([]*ctrlConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	var err error
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	for _, c := range conns {
		c.Close()
	}
	<-s.serveDone

	done := make(chan struct{})
	go func() {
		s.readers.Wait()
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		return errors.Join(err, fmt.Errorf("demoftpd: sessions still running %v after close", closeTimeout))
	}
	s.log.Debug().Msg("demo FTP server closed")
	return err
}

// track registers a freshly accepted control connection. It refuses once the
// server is closing, so that no session starts after Close began to wait.
func (s *Server) track(raw net.Conn) (*ctrlConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	c := newCtrlConn(s, raw)
	s.conns[c] = struct{}{}
	s.sessions.Add(1) // goftp starts one session goroutine per accepted conn
	s.readers.Add(1)
	go c.readLoop()
	return c, nil
}

func (s *Server) forget(c *ctrlConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// realPath maps a clean absolute FTP path (from Session.BuildPath) into Root.
func (s *Server) realPath(vpath string) string {
	return filepath.Join(s.root, filepath.FromSlash(vpath))
}

// trackingListener hands goftp our wrapped control connections.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c, err := l.s.track(raw)
	if err != nil {
		raw.Close()
		return nil, err // net.ErrClosed: goftp's Serve returns
	}
	return c, nil
}
