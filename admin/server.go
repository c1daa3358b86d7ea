package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	stdlog "log"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Timeouts of the HTTP server. The API answers from memory: anything slow
// is a stuck or hostile client.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 65 * time.Second // above pprof's default 30 s CPU profile
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	socketMode        = 0o660
)

// Server is the admin API server.
type Server struct {
	ep        endpoint
	tokenHash [sha256.Size]byte
	hasToken  bool
	bans      BanStore
	sessions  Sessions
	backends  Backends // nil: GET /v1/backends answers 404
	admission *policy.Admission
	readiness Readiness
	log       zerolog.Logger
	mux       *http.ServeMux
	srv       *http.Server

	mu      sync.Mutex
	ln      net.Listener
	sock    os.FileInfo // the unix socket file we created, removed at Shutdown
	started bool
	done    chan struct{} // closed when Serve has returned
}

// Option configures a Server.
type Option func(*Server)

// Readiness says whether the gateway can serve clients now (nil) or why
// not.
type Readiness interface {
	Ready(ctx context.Context) error
}

// WithReadiness serves GET /readyz: 200 while r is ready, 503 with the
// reason otherwise. Like /healthz it needs no token: it is what a load
// balancer asks.
func WithReadiness(r Readiness) Option { return func(s *Server) { s.readiness = r } }

// WithAdmission serves the admission counters at GET /v1/limits.
func WithAdmission(a *policy.Admission) Option { return func(s *Server) { s.admission = a } }

// BanStore is the ban list the API lists and changes: this gateway's
// (*policy.Defender) or a fleet's (*fleet.Bans: a change through any
// replica holds in all).
type BanStore interface {
	List() []policy.Ban
	Ban(ip netip.Addr, d time.Duration, reason string) (policy.Ban, error)
	Unban(ip netip.Addr) bool
}

// New checks cfg, reads the token file and prepares the server; it opens no
// socket. d may be nil (bans are off: the ban endpoints answer 503) and so may
// sessions (an empty list).
func New(cfg Config, d BanStore, sessions Sessions, log zerolog.Logger, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("admin: invalid configuration:\n%w", err)
	}
	if !cfg.Enabled() {
		return nil, errors.New("admin: address is not set")
	}
	ep, _ := parseAddress(cfg.Address) // checked by Validate
	s := &Server{ep: ep, bans: d, sessions: sessions, log: log.With().Str("component", "admin").Logger(), mux: http.NewServeMux()}
	if cfg.TokenFile != "" {
		tok, err := readToken(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin: token_file: %w", err)
		}
		s.tokenHash, s.hasToken = sha256.Sum256([]byte(tok)), true
	}
	for _, o := range opts {
		o(s)
	}
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	if s.readiness != nil {
		s.mux.HandleFunc("GET /readyz", s.handleReady)
	}
	s.Handle("GET /v1/bans", http.HandlerFunc(s.handleListBans))
	s.Handle("POST /v1/bans", http.HandlerFunc(s.handleAddBan))
	s.Handle("DELETE /v1/bans/{ip}", http.HandlerFunc(s.handleRemoveBan))
	s.Handle("GET /v1/sessions", http.HandlerFunc(s.handleSessions))
	s.Handle("GET /v1/limits", http.HandlerFunc(s.handleLimits))
	s.Handle("GET /v1/backends", http.HandlerFunc(s.handleBackends))
	if cfg.Pprof {
		// A CPU or trace profile runs for its ?seconds= (default 30), and
		// must end before the server's write timeout.
		s.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
		s.Handle("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
		s.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		s.Handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
		s.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          stdlog.New(s.log, "", 0),
	}
	return s, nil
}

// Handle adds an endpoint (e.g. "GET /metrics") behind the same checks as
// the API's: the bearer token when one is configured, the Host check.
// Call it before Start.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, s.guard(h)) }

// Handler returns the server's handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens and serves in the background. ctx bounds the listen only;
// Shutdown stops the server. A stale unix socket left by a crash is
// replaced; any other file in the way is an error.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("admin: already started")
	}
	ln, sock, err := s.listen(ctx)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.ep, err)
	}
	s.ln, s.sock, s.started, s.done = ln, sock, true, make(chan struct{})
	s.log.Info().Str("address", s.addr()).Bool("token", s.hasToken).Msg("admin API listening")
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("admin API stopped")
		}
	}()
	return nil
}

func (s *Server) listen(ctx context.Context) (net.Listener, os.FileInfo, error) {
	var lc net.ListenConfig
	if s.ep.network != "unix" {
		ln, err := lc.Listen(ctx, "tcp", s.ep.address)
		return ln, nil, err
	}
	if err := removeStaleSocket(ctx, s.ep.address); err != nil {
		return nil, nil, err
	}
	return listenUnix(ctx, s.ep.address)
}

// listenUnix creates a unix socket at path with mode 0660, and it is never
// more open than that, whatever the umask: it is bound inside a fresh
// private directory (0700) beside path, chmodded there, then renamed into
// place. It returns the listener and the socket file's identity.
func listenUnix(ctx context.Context, path string) (net.Listener, os.FileInfo, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".adm")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", tmp)
	if err != nil {
		return nil, nil, err
	}
	// The file changes its name: Shutdown removes it, not Close.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, os.FileInfo, error) {
		_ = ln.Close()
		return nil, nil, err
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return ln, fi, nil
}

// removeStaleSocket removes path if it is a unix socket nobody listens on.
func removeStaleSocket(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err == nil {
		_ = c.Close()
		return fmt.Errorf("%s: another process serves this socket", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return err
	}
	return os.Remove(path)
}

// Addr returns the bound address ("127.0.0.1:40123" or "unix:/path"), or ""
// before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr()
}

func (s *Server) addr() string {
	if s.ln == nil {
		return ""
	}
	if s.ep.network == "unix" {
		return s.ep.String()
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting, lets running requests finish until ctx is done,
// then closes what is left. The unix socket file is removed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started, done := s.started, s.done
	s.mu.Unlock()
	if !started {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	<-done
	s.mu.Lock()
	sock := s.sock
	s.sock = nil
	s.mu.Unlock()
	if sock != nil {
		// Only our own socket: another server may have taken the path since.
		if fi, err := os.Lstat(s.ep.address); err == nil && os.SameFile(fi, sock) {
			_ = os.Remove(s.ep.address)
		}
	}
	return err
}

// guard checks the bearer token before h. A TCP address always has one
// (Validate); a unix socket may have one.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.hasToken || s.ep.network != "unix" {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
			if subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) != 1 || !ok || !s.hasToken {
				s.log.Warn().Str("remote", r.RemoteAddr).Str("path", r.URL.Path).Msg("admin request without a valid token")
				w.Header().Set("WWW-Authenticate", `Bearer realm="ftpsgate"`)
				writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(encodeJSON(v))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyTimeout bounds one readiness check (the backend probe has its own,
// timeouts.connect).
const readyTimeout = 15 * time.Second

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.readiness.Ready(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleListBans(w http.ResponseWriter, _ *http.Request) {
	if s.bans == nil {
		writeError(w, http.StatusServiceUnavailable, "bans are not enabled")
		return
	}
	bans := s.bans.List()
	if bans == nil {
		bans = []policy.Ban{}
	}
	writeJSON(w, http.StatusOK, bansBody{Bans: bans})
}

func (s *Server) handleAddBan(w http.ResponseWriter, r *http.Request) {
	if s.bans == nil {
		writeError(w, http.StatusServiceUnavailable, "bans are not enabled")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	o, err := parseBanRequest(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, err := s.bans.Ban(o.ip, o.dur, o.reason)
	switch {
	case errors.Is(err, policy.ErrAllowlisted):
		writeError(w, http.StatusConflict, fmt.Sprintf("ip: %s is allowlisted (bans.allow) and cannot be banned", o.ip))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info().Str("remote", r.RemoteAddr).Stringer("ip", b.IP).Time("until", b.Until).Str("reason", b.Reason).Msg("admin: ban")
	writeJSON(w, http.StatusCreated, b)
}

func (s *Server) handleRemoveBan(w http.ResponseWriter, r *http.Request) {
	if s.bans == nil {
		writeError(w, http.StatusServiceUnavailable, "bans are not enabled")
		return
	}
	ip, err := netip.ParseAddr(r.PathValue("ip"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("ip: %q is not an IP address", r.PathValue("ip")))
		return
	}
	if !s.bans.Unban(ip) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not banned", ip))
		return
	}
	s.log.Info().Str("remote", r.RemoteAddr).Stringer("ip", ip).Msg("admin: unban")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSessions(w http.ResponseWriter, _ *http.Request) {
	list := []SessionInfo{}
	if s.sessions != nil {
		if l := s.sessions.Sessions(); l != nil {
			list = l
		}
	}
	writeJSON(w, http.StatusOK, sessionsBody{Sessions: list})
}

func (s *Server) handleLimits(w http.ResponseWriter, _ *http.Request) {
	if s.admission == nil {
		writeError(w, http.StatusNotFound, "limits are not available")
		return
	}
	st := s.admission.Stats()
	if st.ByIP == nil {
		st.ByIP = []policy.IPSessions{}
	}
	writeJSON(w, http.StatusOK, st)
}
