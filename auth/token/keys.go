package token

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// readFile reads a file of at most maxResponseSize bytes.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResponseSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxResponseSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxResponseSize)
	}
	return b, nil
}

// loadJWKS reads a JSON Web Key Set file of public signing keys. Private
// and symmetric keys are refused: the gateway only ever needs the public
// half, and a private key in its configuration is a leak.
func loadJWKS(name string) ([]crypto.PublicKey, error) {
	b, err := readFile(name)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%s: not a JSON Web Key Set: %w", name, err)
	}
	var keys []crypto.PublicKey
	for i, k := range set.Keys {
		if !k.Valid() {
			return nil, fmt.Errorf("%s: key %d (kid %q) is not valid", name, i, k.KeyID)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("%s: key %d (kid %q) is private or symmetric; give only the issuer's public keys", name, i, k.KeyID)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, k.Key)
		default:
			return nil, fmt.Errorf("%s: key %d (kid %q) has an unsupported type %T", name, i, k.KeyID, k.Key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no signing keys", name)
	}
	return keys, nil
}

// verifyState carries what the key set learnt during one Verify out of
// go-oidc, whose errors are not wrapped.
type verifyState struct {
	fetchErr error // the issuer's keys could not be fetched
}

type stateKey struct{}

// remoteKeys is go-oidc's RemoteKeySet (cache, refetch on an unknown key
// id, one fetch at a time) that tells a failed fetch from a bad signature.
type remoteKeys struct{ ks *oidc.RemoteKeySet }

// VerifySignature verifies jwt. RemoteKeySet wraps every failure to fetch
// the keys with %w ("fetching keys %w"): the wrapped error, the context's
// or the transport's; a token that no key verifies is a plain error. The
// tests pin both (issuer down, garbage JWKS, unknown kid).
func (r remoteKeys) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := r.ks.VerifySignature(ctx, jwt)
	if err != nil && errors.Unwrap(err) != nil {
		if st, ok := ctx.Value(stateKey{}).(*verifyState); ok {
			st.fetchErr = err
		}
	}
	return payload, err
}

// newClient returns the HTTP client for the issuer.
func newClient(c Config) (*http.Client, error) {
	var hc http.Client
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := readFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", c.CAFile)
			}
			t.TLSClientConfig.RootCAs = pool
		}
		base = t
	}
	hc.Transport = guard{base: base, allowHTTP: c.AllowHTTP}
	if hc.Timeout == 0 {
		hc.Timeout = c.httpTimeout()
	}
	return &hc, nil
}

// guard is the transport to the issuer: https only (unless allowHTTP, also
// after a redirect), and responses bounded to maxResponseSize.
type guard struct {
	base      http.RoundTripper
	allowHTTP bool
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && (!g.allowHTTP || req.URL.Scheme != "http") {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("token: %s: %w", req.URL.Redacted(), errHTTP)
	}
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseSize}
	return resp, nil
}

func (g guard) CloseIdleConnections() {
	if c, ok := g.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

var errTooLarge = fmt.Errorf("token: issuer response larger than %d bytes", maxResponseSize)

// limitedBody fails (rather than truncates) a body longer than left bytes.
type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// jwksCache answers a request for the JWKS from the last good response
// while it is younger than minAge. go-oidc fetches the JWKS again for every
// token that no cached key verifies (an unknown kid, a forged signature):
// without this, each forged token would cost the issuer a request.
type jwksCache struct {
	base   http.RoundTripper
	url    string
	minAge time.Duration
	now    func() time.Time

	mu     sync.Mutex
	body   []byte
	header http.Header
	at     time.Time
}

func (c *jwksCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.String() != c.url {
		return c.base.RoundTrip(req)
	}
	c.mu.Lock()
	body, header, at := c.body, c.header, c.at
	c.mu.Unlock()
	if body != nil && c.now().Sub(at) < c.minAge {
		return &http.Response{
			Status: "200 OK", StatusCode: http.StatusOK,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: header.Clone(), Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: req,
		}, nil
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err = io.ReadAll(resp.Body) // bounded by guard
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.body, c.header, c.at = body, resp.Header.Clone(), c.now()
	c.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (c *jwksCache) CloseIdleConnections() {
	if b, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		b.CloseIdleConnections()
	}
}
