package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/auth/local"
	"github.com/ftpsgate/ftpsgate/auth/token"
	"github.com/ftpsgate/ftpsgate/auth/totp"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// certLogin starts TLS on the explicit listener showing cert (nil: none)
// and sends USER and PASS.
func certLogin(t *testing.T, g *gateway, cert *tls.Certificate, name, pass string, code int) wire.Reply {
	t.Helper()
	c := dialRaw(t, g.addr("explicit"), false)
	if cert != nil {
		c.tls.Certificates = []tls.Certificate{*cert}
	}
	c.startTLS()
	c.do("USER "+name, wire.StatusUserOK)
	return c.do("PASS "+pass, code)
}

func pinOf(t *testing.T, c tls.Certificate) string {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return local.FormatPin(local.Pin(x))
}

// requestCerts asks clients for a certificate and leaves its check to the
// edge authenticator (what auth.mode gateway sets), with caFile as the
// client CA if not empty.
func requestCerts(caFile string) option {
	return func(c *proxy.Config) {
		c.TLS.ClientAuth = policy.ClientAuthRequest
		c.TLS.ClientCertPins = true
		c.TLS.ClientCAFile = caFile
	}
}

// TestEdgePinnedCertificate: a certificate-only user logs in with its
// pinned self-signed certificate and any PASS; another certificate or none
// is refused. Without a client CA, a user who needs a CA-issued
// certificate cannot log in.
func TestEdgePinnedCertificate(t *testing.T) {
	robot, _ := selfSigned(t)
	other, _ := selfSigned(t)
	e := &edgeSetup{opts: []option{requestCerts("")}}
	pw := e.secret("Paula-edge-Pa55!")
	e.users = map[string]*local.User{
		"robot": {Factors: []string{"client_cert"}, Pins: []string{pinOf(t, robot)}},
		"paula": {Password: hashPW(t, pw), Factors: []string{"password", "client_cert"}},
	}
	g := startEdge(t, e)

	rep := certLogin(t, g, &robot, "robot", "anything", wire.StatusLoggedIn)
	if strings.Contains(rep.Text(), user) {
		t.Errorf("230 names the backend account: %q", rep.Text())
	}
	certLogin(t, g, &other, "robot", "anything", wire.StatusNotLoggedIn)
	certLogin(t, g, nil, "robot", "anything", wire.StatusNotLoggedIn)
	// Pins are per user: robot's certificate is nobody else's.
	certLogin(t, g, &robot, "paula", pw, wire.StatusNotLoggedIn)
	if !hasLogLine(g.logs.String(), "login failed", "does not match the user's pins") ||
		!hasLogLine(g.logs.String(), "login failed", "client certificate required") {
		t.Error("the log does not say why the certificates were refused")
	}
	if !strings.Contains(g.logs.String(), `"factors":["client_cert"]`) {
		t.Error("the login line does not name the client_cert factor")
	}
	if n := backendDials(g); n != 1 {
		t.Errorf("backend dialled %d times, want 1", n)
	}
}

// TestEdgeCACertificateAndPassword: factors [password, client_cert] with a
// client CA need both: the right password and a certificate the CA issued.
func TestEdgeCACertificateAndPassword(t *testing.T) {
	ca := newTestCA(t)
	issued := ca.issue(t, "paula", true).tls
	self, _ := selfSigned(t)
	e := &edgeSetup{opts: []option{requestCerts(ca.pemFile)}}
	pw := e.secret("Paula-edge-Pa55!")
	e.users = map[string]*local.User{"paula": {Password: hashPW(t, pw), Factors: []string{"password", "client_cert"}}}
	g := startEdge(t, e)

	certLogin(t, g, &issued, "paula", "Paula-wrong-Pa55!", wire.StatusNotLoggedIn)
	certLogin(t, g, nil, "paula", pw, wire.StatusNotLoggedIn)
	certLogin(t, g, &self, "paula", pw, wire.StatusNotLoggedIn)
	if n := backendDials(g); n != 0 {
		t.Errorf("refused logins dialled the backend %d times", n)
	}
	certLogin(t, g, &issued, "paula", pw, wire.StatusLoggedIn)
	if !strings.Contains(g.logs.String(), `"factors":["password","client_cert"]`) {
		t.Error("the login line does not name both factors")
	}
}

// TestEdgeLockout: after lock_after failures a user is refused even with
// the right password, with the same 530, until lock_for has passed; a
// name nobody has is counted and locked the same way; other users are not
// affected.
func TestEdgeLockout(t *testing.T) {
	const lockFor = 1500 * time.Millisecond
	e := &edgeSetup{
		lockout: policy.LockoutPolicy{Threshold: 3, LockAfter: 3, Delay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond, LockFor: lockFor, Window: time.Minute},
		opts:    []option{func(c *proxy.Config) { c.Bans = policy.BanConfig{MaxFailures: 100} }},
	}
	pw, annPW := e.secret("Lou-edge-Pa55!"), e.secret("Ann-edge-Pa55!")
	e.users = map[string]*local.User{"lou": {Password: hashPW(t, pw)}, "ann": {Password: hashPW(t, annPW)}}
	g := startEdge(t, e)

	var wrong wire.Reply
	for range 3 {
		_, wrong = edgeLogin(t, g, "lou", "Lou-wrong-Pa55!", wire.StatusNotLoggedIn)
		edgeLogin(t, g, "ghost", "Ghost-Pa55!", wire.StatusNotLoggedIn)
	}
	locked := time.Now()
	_, rep := edgeLogin(t, g, "lou", pw, wire.StatusNotLoggedIn)
	if rep.Text() != wrong.Text() {
		t.Errorf("locked user %q, wrong password %q: the replies differ", rep.Text(), wrong.Text())
	}
	edgeLogin(t, g, "ghost", "Ghost-Pa55!", wire.StatusNotLoggedIn)
	if n := strings.Count(g.logs.String(), `"reason":"user temporarily locked`); n != 2 {
		t.Errorf("%d attempts refused as locked, want 2 (the known and the unknown name)", n)
	}
	edgeLogin(t, g, "ann", annPW, wire.StatusLoggedIn)
	if n := backendDials(g); n != 1 {
		t.Errorf("backend dialled %d times, want 1 (ann)", n)
	}
	time.Sleep(time.Until(locked.Add(lockFor + 200*time.Millisecond)))
	edgeLogin(t, g, "lou", pw, wire.StatusLoggedIn)
}

// testIssuer is an OpenID Connect issuer on loopback over https: discovery
// and JWKS, signing with one ES256 key.
type testIssuer struct {
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	caFile string
}

func newIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &testIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	is.srv = httptest.NewTLSServer(mux)
	t.Cleanup(is.srv.Close)
	is.caFile = filepath.Join(t.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(is.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return is
}

// token signs a token for name; change edits the claims first.
func (is *testIssuer) token(t *testing.T, name string, change func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": is.srv.URL, "aud": "ftpsgate", "sub": "id-" + name, "preferred_username": name,
		"groups": []string{"robots"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
	if change != nil {
		change(claims)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: is.key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tokenProvider(t *testing.T, c token.Config) *token.Provider {
	t.Helper()
	p, err := token.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestEdgeToken: an access token from the issuer (discovered over https
// with its CA) logs in as the token's user, mapped through its group to the
// backend account, with the default factors; an expired token, one for
// another audience and one for another user are 530; local passwords still
// work after the token provider.
func TestEdgeToken(t *testing.T) {
	is := newIssuer(t)
	prov := tokenProvider(t, token.Config{Issuer: is.srv.URL, Audience: "ftpsgate", Discovery: true, CAFile: is.caFile})
	e := &edgeSetup{extra: []auth.Provider{prov}, tune: func(g *auth.Gateway) {
		g.BackendUser, g.BackendPassword = "", ""
		g.Groups = []auth.Group{{Name: "robots", BackendUser: user, BackendPassword: password}}
	}}
	pw := e.secret("Alice-edge-Pa55!")
	e.users = map[string]*local.User{"alice": {Password: hashPW(t, pw), Groups: []string{"robots"}}}
	g := startEdge(t, e)

	tok := e.secret(is.token(t, "robot", nil))
	c, rep := edgeLogin(t, g, "robot", tok, wire.StatusLoggedIn)
	if strings.Contains(rep.Text(), user) {
		t.Errorf("230 names the backend account: %q", rep.Text())
	}
	c.do("PWD", wire.StatusPathCreated)
	if !strings.Contains(g.logs.String(), `"user":"robot","backend_user":"`+user+`","factors":["token"]`) {
		t.Error("the login line does not show the token login mapped to the backend account")
	}

	expired := e.secret(is.token(t, "robot", func(c map[string]any) {
		past := time.Now().Add(-time.Hour)
		c["iat"], c["nbf"], c["exp"] = past.Add(-time.Minute).Unix(), past.Add(-time.Minute).Unix(), past.Unix()
	}))
	edgeLogin(t, g, "robot", expired, wire.StatusNotLoggedIn)
	otherAud := e.secret(is.token(t, "robot", func(c map[string]any) { c["aud"] = "someone-else" }))
	edgeLogin(t, g, "robot", otherAud, wire.StatusNotLoggedIn)
	forEve := e.secret(is.token(t, "eve", nil))
	edgeLogin(t, g, "robot", forEve, wire.StatusNotLoggedIn)

	edgeLogin(t, g, "alice", pw, wire.StatusLoggedIn)
	if n := backendDials(g); n != 2 {
		t.Errorf("backend dialled %d times, want 2", n)
	}
}

// TestEdgeTokenIssuerDown: with discovery and an issuer that does not
// answer, a token login is 421 and the session ends; a local password
// (not a token) is still decided.
func TestEdgeTokenIssuerDown(t *testing.T) {
	is := newIssuer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "https://" + ln.Addr().String()
	ln.Close()
	prov := tokenProvider(t, token.Config{Issuer: down, Audience: "ftpsgate", Discovery: true, CAFile: is.caFile, HTTPTimeout: 2 * time.Second})
	e := &edgeSetup{extra: []auth.Provider{prov}}
	pw := e.secret("Alice-edge-Pa55!")
	e.users = map[string]*local.User{"alice": {Password: hashPW(t, pw)}}
	g := startEdge(t, e)

	tok := e.secret(is.token(t, "robot", func(c map[string]any) { c["iss"] = down }))
	c, rep := edgeLogin(t, g, "robot", tok, wire.StatusNotAvailable)
	if !strings.Contains(rep.Text(), "try again later") {
		t.Errorf("issuer down: %q", rep.Text())
	}
	c.expectClosed(5 * time.Second)
	if !hasLogLine(g.logs.String(), `"level":"error"`, "authenticator unavailable") {
		t.Error("no error line for the unreachable issuer")
	}
	edgeLogin(t, g, "alice", pw, wire.StatusLoggedIn)
}

// TestEdgeMappingRefused: a user mapped to a backend account that the
// backend refuses gets 421 (a configuration problem, not the client's
// wrong password), never the backend's 530, and an error line names the
// mapped account.
func TestEdgeMappingRefused(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "backend-pw")
	if err := os.WriteFile(pwFile, []byte("Not-the-backend-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &edgeSetup{}
	e.secret("Not-the-backend-pw")
	pw := e.secret("Mona-edge-Pa55!")
	e.users = map[string]*local.User{"mona": {Password: hashPW(t, pw), BackendUser: "nobody", BackendPasswordFile: pwFile}}
	g := startEdge(t, e)

	c, rep := edgeLogin(t, g, "mona", pw, wire.StatusNotAvailable)
	if strings.Contains(rep.Text(), "nobody") {
		t.Errorf("421 names the backend account: %q", rep.Text())
	}
	c.expectClosed(5 * time.Second)
	if !hasLogLine(g.logs.String(), `"level":"error"`, "the backend refused the mapped account", `"backend_user":"nobody"`) {
		t.Error("no error line names the refused mapping")
	}
}

// TestEdgeCertificateAndTOTP: factors [client_cert, totp] (no password):
// the pinned certificate and a code, sent as PASS or with ACCT after 332.
func TestEdgeCertificateAndTOTP(t *testing.T) {
	cert, _ := selfSigned(t)
	key, err := totp.NewKey("ftpsgate-e2e", "cody")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := &edgeSetup{codes: &totp.Verifier{Now: clock}, opts: []option{requestCerts("")}}
	e.users = map[string]*local.User{"cody": {Factors: []string{"client_cert", "totp"}, Pins: []string{pinOf(t, cert)}, TOTPSecret: key.Secret}}
	g := startEdge(t, e)
	code := func() string {
		t.Helper()
		c, err := totp.Code(key.Secret, clock())
		if err != nil {
			t.Fatal(err)
		}
		return e.secret(c)
	}

	certLogin(t, g, &cert, "cody", code(), wire.StatusLoggedIn)
	certLogin(t, g, nil, "cody", code(), wire.StatusNotLoggedIn)

	mu.Lock()
	now = now.Add(2 * totp.Period)
	mu.Unlock()
	c := dialRaw(t, g.addr("explicit"), false)
	c.tls.Certificates = []tls.Certificate{cert}
	c.startTLS()
	c.do("USER cody", wire.StatusUserOK)
	c.do("PASS x", wire.StatusNeedAccount)
	c.do("ACCT "+code(), wire.StatusLoggedIn)
}
