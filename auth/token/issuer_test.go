package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testKey is one signing key of the test issuer.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newRSAKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.RS256, priv: k}
}

func newECKey(t testing.TB, kid string) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kid: kid, alg: jose.ES256, priv: k}
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign returns a compact JWS of claims signed with k.
func (k testKey) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, s, claims)
}

func signPayload(t testing.TB, s jose.Signer, claims map[string]any) string {
	t.Helper()
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

// testIssuer is an OpenID Connect issuer on loopback: discovery and JWKS.
type testIssuer struct {
	srv *httptest.Server

	mu   sync.Mutex
	keys []testKey // published

	discoveryHits atomic.Int32
	jwksHits      atomic.Int32
	hang          atomic.Bool // requests wait until the test ends
	garbage       atomic.Bool // the JWKS is not JSON
	release       chan struct{}
}

// newTestIssuer starts an issuer publishing keys; tls picks https.
func newTestIssuer(t *testing.T, tls bool, keys ...testKey) *testIssuer {
	t.Helper()
	is := &testIssuer{keys: keys, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discoveryHits.Add(1)
		if is.wait(r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.srv.URL,
			"jwks_uri":                              is.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		if is.wait(r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if is.garbage.Load() {
			w.Write([]byte("<html>maintenance</html>"))
			return
		}
		json.NewEncoder(w).Encode(is.jwks())
	})
	if tls {
		is.srv = httptest.NewTLSServer(mux)
	} else {
		is.srv = httptest.NewServer(mux)
	}
	t.Cleanup(is.srv.Close)
	t.Cleanup(func() { close(is.release) }) // runs before srv.Close
	return is
}

// wait holds a request while hang is set; true: give up on it.
func (is *testIssuer) wait(r *http.Request) bool {
	if !is.hang.Load() {
		return false
	}
	select {
	case <-is.release:
	case <-r.Context().Done():
	}
	return true
}

func (is *testIssuer) jwks() jose.JSONWebKeySet {
	is.mu.Lock()
	defer is.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range is.keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	return set
}

func (is *testIssuer) publish(keys ...testKey) {
	is.mu.Lock()
	is.keys = keys
	is.mu.Unlock()
}

// writeJWKS writes the public keys to a file and returns its name.
func writeJWKS(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "jwks.json")
	writeKeys(t, name, keys...)
	return name
}

// writeFile writes the public halves of keys to name as a JWKS.
func writeFile(t testing.TB, name string, keys ...testKey) {
	t.Helper()
	var jwks []jose.JSONWebKey
	for _, k := range keys {
		jwks = append(jwks, k.jwk())
	}
	writeKeys(t, name, jwks...)
}

func writeKeys(t testing.TB, name string, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeCA writes the TLS issuer's certificate as a PEM CA file.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// claimsFor are valid claims for user from iss to aud at now.
func claimsFor(iss, aud, user string, now time.Time) map[string]any {
	return map[string]any{
		"iss":                iss,
		"aud":                aud,
		"sub":                "id-" + user,
		"preferred_username": user,
		"groups":             []string{"partners", "uploads"},
		"iat":                now.Unix(),
		"nbf":                now.Unix(),
		"exp":                now.Add(5 * time.Minute).Unix(),
	}
}
