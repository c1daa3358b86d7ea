package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/policy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeSessions []SessionInfo

func (f fakeSessions) Sessions() []SessionInfo { return f }

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPprof: the profiles are served only when asked for, and only with the
// token.
func TestPprof(t *testing.T) {
	tok := writeToken(t, "s3cret-token\n")
	get := func(s *Server, token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/debug/pprof/cmdline", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultTransport.(*http.Transport).Clone().RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	off, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: tok})
	if code := get(off, "s3cret-token"); code != http.StatusNotFound {
		t.Errorf("pprof off: %d, want 404", code)
	}
	on, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: tok, Pprof: true})
	if code := get(on, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("pprof on, wrong token: %d, want 401", code)
	}
	if code := get(on, "s3cret-token"); code != http.StatusOK {
		t.Errorf("pprof on: %d, want 200", code)
	}
}

func TestConfigValidate(t *testing.T) {
	tok := writeToken(t, "s3cret\n")
	empty := writeToken(t, " \n")
	spaced := writeToken(t, "two words")
	for _, tc := range []struct {
		c    Config
		want string // "" = valid
	}{
		{Config{}, ""},
		{Config{Address: "127.0.0.1:9090", TokenFile: tok}, ""},
		{Config{Address: "127.0.0.1:9090", TokenFile: tok, Pprof: true}, ""},
		{Config{Pprof: true}, "pprof: on but address is empty"},
		{Config{Address: "[::1]:9090", TokenFile: tok}, ""},
		{Config{Address: "localhost:9090", TokenFile: tok}, ""},
		{Config{Address: "unix:/run/ftpsgate/admin.sock"}, ""},
		{Config{Address: "unix:/run/ftpsgate/admin.sock", TokenFile: tok}, ""},
		{Config{Address: "0.0.0.0:9090", TokenFile: tok}, ""},
		// Every TCP address needs a token, loopback included: any local
		// account reaches loopback.
		{Config{Address: "127.0.0.1:9090"}, "token_file: required on a TCP address (127.0.0.1:9090); use a unix socket (unix:/path) for token-free local access"},
		{Config{Address: "127.0.0.1:9090", Pprof: true}, "token_file: required on a TCP address"},
		{Config{Address: "127.1.2.3:9090"}, "token_file: required on a TCP address"},
		{Config{Address: "[::1]:9090"}, "token_file: required on a TCP address"},
		{Config{Address: "[::ffff:127.0.0.1]:9090"}, "token_file: required on a TCP address"},
		{Config{Address: "localhost:9090"}, "token_file: required on a TCP address"},
		{Config{Address: "0.0.0.0:9090"}, "token_file: required on a TCP address (0.0.0.0:9090)"},
		{Config{Address: ":9090"}, "token_file: required on a TCP address"},
		{Config{Address: "[::]:9090"}, "token_file: required"},
		{Config{Address: "192.0.2.1:9090"}, "token_file: required"},
		{Config{Address: "admin.example:9090"}, "address: \"admin.example:9090\": host must be an IP address or localhost"},
		{Config{Address: "127.0.0.1"}, "address: \"127.0.0.1\": want host:port"},
		{Config{Address: "127.0.0.1:http"}, "is not a number"},
		{Config{Address: "127.0.0.1:70000"}, "is not a number"},
		{Config{Address: "unix:"}, "address: \"unix:\": want unix:/path"},
		{Config{Address: "127.0.0.1:9090", TokenFile: filepath.Join(t.TempDir(), "missing")}, "token_file: "},
		{Config{Address: "127.0.0.1:9090", TokenFile: empty}, "token_file: " + empty + " is empty"},
		{Config{Address: "127.0.0.1:9090", TokenFile: spaced}, "printable ASCII without spaces"},
		{Config{TokenFile: tok}, "token_file: set but address is empty"},
	} {
		err := tc.c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate(%+v) = %v", tc.c, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate(%+v) = %v, want %q", tc.c, err, tc.want)
		}
	}
}

// startServer runs a server on address with a Defender and two sessions.
func startServer(t *testing.T, cfg Config, opts ...Option) (*Server, *policy.Defender) {
	t.Helper()
	d, err := policy.NewDefender(policy.BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sessions := fakeSessions{
		{ID: "a1", Client: "192.0.2.1:50000", User: "alice", Listener: "explicit", Backend: "legacy", Started: time.Unix(1700000000, 0).UTC(), BytesUp: 10, BytesDown: 20},
		{ID: "b2", Client: "[2001:db8::1]:50001", Listener: "implicit", Started: time.Unix(1700000100, 0).UTC()},
	}
	s, err := New(cfg, d, sessions, zerolog.Nop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		_ = d.Close()
	})
	return s, d
}

func TestClientServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	tok := writeToken(t, "s3cret-token\n")
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "unix:" + sock} {
		t.Run(addr, func(t *testing.T) {
			if strings.HasPrefix(addr, "[::1]") {
				if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
					t.Skip("no IPv6 loopback")
				} else {
					ln.Close()
				}
			}
			adm := policy.NewAdmission(policy.Limits{}, nil)
			tk, err := adm.Admit(netip.MustParseAddr("192.0.2.1"))
			if err != nil {
				t.Fatal(err)
			}
			defer tk.Release()
			cfg, token := Config{Address: addr, TokenFile: tok}, "s3cret-token"
			if strings.HasPrefix(addr, "unix:") {
				cfg, token = Config{Address: addr}, ""
			}
			s, d := startServer(t, cfg, WithAdmission(adm))
			if strings.HasPrefix(addr, "unix:") {
				if s.Addr() != addr {
					t.Fatalf("Addr = %q", s.Addr())
				}
				if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != socketMode {
					t.Fatalf("socket: %v %v", fi, err)
				}
			}
			c, err := NewClient(s.Addr(), token)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := c.Health(ctx); err != nil {
				t.Fatal(err)
			}
			if bans, err := c.ListBans(ctx); err != nil || len(bans) != 0 {
				t.Fatalf("ListBans = %v, %v", bans, err)
			}
			v6 := netip.MustParseAddr("2001:db8::7")
			b, err := c.AddBan(ctx, v6, 2*time.Hour, "spraying")
			if err != nil || b.IP != v6 || b.Reason != "spraying" || b.Until.Sub(b.Since) != 2*time.Hour {
				t.Fatalf("AddBan = %+v, %v", b, err)
			}
			b, err = c.AddBan(ctx, netip.MustParseAddr("::ffff:192.0.2.9"), 0, "")
			if err != nil || b.IP.String() != "192.0.2.9" || b.Reason != "admin" || b.Until.Sub(b.Since) != policy.DefaultBanDuration {
				t.Fatalf("AddBan with defaults = %+v, %v", b, err)
			}
			if _, ok := d.Banned(v6); !ok {
				t.Fatal("the ban did not reach the Defender")
			}
			bans, err := c.ListBans(ctx)
			if err != nil || len(bans) != 2 || bans[0].IP.String() != "192.0.2.9" || bans[1].IP != v6 {
				t.Fatalf("ListBans = %+v, %v", bans, err)
			}
			if _, err := c.AddBan(ctx, netip.MustParseAddr("10.1.1.1"), time.Hour, ""); err == nil || !strings.Contains(err.Error(), "allowlisted") {
				t.Fatalf("allowlisted ban: %v", err)
			}
			if err := c.RemoveBan(ctx, v6); err != nil {
				t.Fatal(err)
			}
			if err := c.RemoveBan(ctx, v6); !errors.Is(err, ErrNotFound) {
				t.Fatalf("second RemoveBan = %v, want ErrNotFound", err)
			}
			if _, ok := d.Banned(v6); ok {
				t.Fatal("still banned")
			}
			sess, err := c.ListSessions(ctx)
			if err != nil || len(sess) != 2 || sess[0].User != "alice" || sess[0].BytesDown != 20 || sess[0].Backend != "legacy" || sess[1].Backend != "" || !sess[1].Started.Equal(time.Unix(1700000100, 0)) {
				t.Fatalf("ListSessions = %+v, %v", sess, err)
			}
			st, err := c.Limits(ctx)
			if err != nil || st.Sessions != 1 || len(st.ByIP) != 1 || st.ByIP[0].IP.String() != "192.0.2.1" {
				t.Fatalf("Limits = %+v, %v", st, err)
			}
		})
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Shutdown: %v", err)
	}
}

func TestToken(t *testing.T) {
	tok := writeToken(t, "s3cret-token\n")
	s, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: tok})
	ctx := context.Background()
	for _, bad := range []string{"", "wrong", "s3cret-toke", "s3cret-token-"} {
		c, _ := NewClient(s.Addr(), bad)
		if _, err := c.ListBans(ctx); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("token %q: %v", bad, err)
		}
		// The health check needs no token.
		if err := c.Health(ctx); err != nil {
			t.Errorf("health with token %q: %v", bad, err)
		}
	}
	c, _ := NewClient(s.Addr(), "s3cret-token")
	if _, err := c.ListBans(ctx); err != nil {
		t.Fatal(err)
	}
	// Not "Bearer": refused.
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/v1/bans", nil)
	req.Header.Set("Authorization", "Basic s3cret-token")
	resp, err := http.DefaultTransport.(*http.Transport).Clone().RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("Basic: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestNonLoopbackWithToken(t *testing.T) {
	if _, err := New(Config{Address: "0.0.0.0:0"}, nil, nil, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "token_file: required") {
		t.Fatalf("New without token: %v", err)
	}
	if _, err := New(Config{}, nil, nil, zerolog.Nop()); err == nil {
		t.Fatal("New without address")
	}
	s, err := New(Config{Address: "0.0.0.0:0", TokenFile: writeToken(t, "tok")}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	_, port, _ := net.SplitHostPort(s.Addr())
	c, _ := NewClient("127.0.0.1:"+port, "tok")
	// No Defender: 503; no sessions: an empty list; no admission: 404.
	var apiErr *APIError
	if _, err := c.ListBans(context.Background()); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("ListBans without Defender: %v", err)
	}
	if sess, err := c.ListSessions(context.Background()); err != nil || sess == nil || len(sess) != 0 {
		t.Fatalf("ListSessions without sessions: %#v, %v", sess, err)
	}
	if _, err := c.Limits(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Limits without admission: %v", err)
	}
}

// TestBadInput drives the handler directly.
func TestBadInput(t *testing.T) {
	d, _ := policy.NewDefender(policy.BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
	s, err := New(Config{Address: "unix:" + filepath.Join(t.TempDir(), "admin.sock")}, d, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Ban(netip.MustParseAddr("192.0.2.50"), time.Hour, "x"); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, tc := range []struct {
		method, path, ctype, body, host string
		status                          int
		want                            string
	}{
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","duration":"1h"}`, "", 201, `"ip":"192.0.2.1"`},
		{"POST", "/v1/bans", "application/json; charset=utf-8", `{"ip":"192.0.2.2"}`, "", 201, `"reason":"admin"`},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.3","duration":"0"}`, "", 201, `"ip":"192.0.2.3"`},
		{"POST", "/v1/bans", "text/plain", `{"ip":"192.0.2.1"}`, "", 415, "application/json"},
		{"POST", "/v1/bans", "", `{"ip":"192.0.2.1"}`, "", 415, "application/json"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1"`, "", 400, "body: "},
		{"POST", "/v1/bans", "application/json", ``, "", 400, "body: "},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1"} {}`, "", 400, "one JSON object"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","until":"x"}`, "", 400, "unknown field"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.300"}`, "", 400, "ip: \\\"192.0.2.300\\\" is not an IP address"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.0/24"}`, "", 400, "is not an IP address"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","duration":"1 hour"}`, "", 400, "duration: "},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","duration":"-1h"}`, "", 400, "duration: -1h0m0s is not between"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","duration":"100000h"}`, "", 400, "is not between"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","reason":"a\nb"}`, "", 400, "reason: contains the unprintable U+000A"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1","reason":"` + strings.Repeat("x", 300) + `"}`, "", 400, "reason: longer than 256"},
		{"POST", "/v1/bans", "application/json", `{"ip":"10.2.3.4"}`, "", 409, "allowlisted"},
		{"POST", "/v1/bans", "application/json", `{"ip":"192.0.2.1"}` + strings.Repeat(" ", 70000), "", 400, "body"},
		{"DELETE", "/v1/bans/not-an-ip", "", "", "", 400, "ip: "},
		{"DELETE", "/v1/bans/192.0.2.99", "", "", "", 404, "192.0.2.99 is not banned"},
		{"DELETE", "/v1/bans/192.0.2.50", "", "", "", 204, ""},
		{"DELETE", "/v1/bans/2001:db8::1", "", "", "", 404, "not banned"},
		{"PUT", "/v1/bans", "", "", "", 405, ""},
		{"GET", "/v1/bans", "", "", "localhost:9090", 200, `"bans":[`},
		{"GET", "/healthz", "", "", "evil.example", 200, `"ok"`},
		{"GET", "/v1/sessions", "", "", "", 200, `{"sessions":[]}`},
		{"GET", "/nope", "", "", "", 404, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Host = "127.0.0.1:9090"
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s %.60q: %d %s, want %d %q", tc.method, tc.path, tc.body, rec.Code, rec.Body, tc.status, tc.want)
		}
		if rec.Code >= 400 && rec.Code != 404 && rec.Code != 405 && rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: error without JSON", tc.method, tc.path)
		}
	}
}

func TestUnixSocketInTheWay(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// A stale socket (its server died without unlinking) is replaced.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	s, err := New(Config{Address: "unix:" + stale}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer s.Shutdown(ctx)
	if err := s.Start(ctx); err == nil {
		t.Fatal("second Start")
	}

	// A live one is not stolen.
	s2, _ := New(Config{Address: "unix:" + stale}, nil, nil, zerolog.Nop())
	if err := s2.Start(ctx); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("live socket: %v", err)
	}
	if err := s2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// A regular file is never removed.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3, _ := New(Config{Address: "unix:" + file}, nil, nil, zerolog.Nop())
	if err := s3.Start(ctx); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep" {
		t.Fatal("regular file touched")
	}
}

func TestClientErrors(t *testing.T) {
	if _, err := NewClient("nowhere", ""); err == nil {
		t.Fatal("NewClient accepted a bad address")
	}
	c, err := NewClient("unix:"+filepath.Join(t.TempDir(), "none.sock"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListBans(context.Background()); err == nil {
		t.Fatal("no server, no error")
	}
	// A server that answers something else than JSON.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	defer srv.Close()
	c, _ = NewClient(strings.TrimPrefix(srv.URL, "http://"), "")
	var apiErr *APIError
	if _, err := c.ListBans(context.Background()); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTeapot || apiErr.Message != "I'm a teapot" {
		t.Fatalf("teapot: %v", err)
	}
}

// TestLoopbackNeedsToken: loopback TCP is no excuse: any local account can
// reach it. Without token_file the server is refused; with it, a request
// without the token or with a wrong one gets 401, with it 200.
func TestLoopbackNeedsToken(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		if _, err := New(Config{Address: addr}, nil, nil, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "token_file: required on a TCP address") {
			t.Errorf("New(%s) without token_file: %v", addr, err)
		}
	}
	s, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: writeToken(t, "loop-token\n")})
	get := func(auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.Addr()+"/v1/bans", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultTransport.(*http.Transport).Clone().RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for auth, want := range map[string]int{
		"":                    http.StatusUnauthorized,
		"Bearer wrong":        http.StatusUnauthorized,
		"Bearer ":             http.StatusUnauthorized,
		"Bearer loop-token":   http.StatusOK,
		"Bearer  loop-token ": http.StatusOK,
	} {
		if got := get(auth); got != want {
			t.Errorf("Authorization %q: %d, want %d", auth, got, want)
		}
	}
	// The guard refuses a TCP server that somehow has no token.
	s2 := &Server{ep: endpoint{network: "tcp", address: "127.0.0.1:1"}, log: zerolog.Nop()}
	rec := httptest.NewRecorder()
	s2.guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/bans", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("TCP without a token: %d, want 401", rec.Code)
	}
}

// TestUnixSocketMode: the socket is 0660 whatever the umask, needs no
// token, and nothing is left beside it.
func TestUnixSocketMode(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	sock := filepath.Join(dir, "admin.sock")
	s, _ := startServer(t, Config{Address: "unix:" + sock})
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want socket 0660", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files beside the socket: %v", entries)
	}
	c, _ := NewClient(s.Addr(), "")
	if _, err := c.ListBans(context.Background()); err != nil {
		t.Fatalf("unix socket without a token: %v", err)
	}
}

type fakeReadiness struct{ err error }

func (f *fakeReadiness) Ready(context.Context) error { return f.err }

// TestReadyz: /readyz answers 200 or 503 with the reason, without the token
// (a load balancer asks it), and only when a readiness is given.
func TestReadyz(t *testing.T) {
	r := &fakeReadiness{}
	s, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: writeToken(t, "s3cret-token\n")}, WithReadiness(r))
	get := func() (int, map[string]string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	if code, body := get(); code != http.StatusOK || body["status"] != "ready" {
		t.Fatalf("ready: %d %v", code, body)
	}
	r.err = errors.New("backend 10.0.0.5:21: connection refused")
	if code, body := get(); code != http.StatusServiceUnavailable || body["reason"] != r.err.Error() {
		t.Fatalf("not ready: %d %v", code, body)
	}
	plain, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: writeToken(t, "s3cret-token\n")})
	resp, err := http.Get("http://" + plain.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("/readyz answered 200 without a readiness to ask")
	}
}
