package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
)

// Errors a Client returns (wrapped in an *APIError).
var (
	ErrNotFound     = errors.New("admin: not found")
	ErrUnauthorized = errors.New("admin: unauthorized")
)

// APIError is an error answer of the API.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("admin API: %s (HTTP %d)", e.Message, e.StatusCode)
}

// Is makes errors.Is(err, ErrNotFound) and errors.Is(err, ErrUnauthorized) work.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	}
	return false
}

const (
	clientTimeout   = 10 * time.Second
	maxResponseSize = 32 << 20
)

// Client calls the admin API, for the command line.
type Client struct {
	base  string // "http://host:port" or "http://unix"
	token string
	hc    *http.Client
}

// NewClient returns a client for address (the syntax of Config.Address:
// "127.0.0.1:9090", "[::1]:9090", "unix:/run/ftpsgate/admin.sock") that
// sends token as a bearer token when it is not empty. Every call is bounded
// by its context and by 10 seconds.
func NewClient(address, token string) (*Client, error) {
	ep, err := parseAddress(address)
	if err != nil {
		return nil, fmt.Errorf("admin: address: %w", err)
	}
	// One request per command: no idle connections (nor goroutines) kept.
	tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: clientTimeout}
	base := "http://" + ep.address
	if ep.network == "unix" {
		base = "http://unix"
		path := ep.address
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return &Client{base: base, token: token, hc: &http.Client{Transport: tr, Timeout: clientTimeout}}, nil
}

// ListBans returns the bans in force, sorted by address.
func (c *Client) ListBans(ctx context.Context) ([]policy.Ban, error) {
	var body bansBody
	err := c.do(ctx, http.MethodGet, "/v1/bans", nil, http.StatusOK, &body)
	return body.Bans, err
}

// AddBan bans ip for d (zero: the gateway's bans.duration) with reason
// (empty: "admin"), and returns the ban.
func (c *Client) AddBan(ctx context.Context, ip netip.Addr, d time.Duration, reason string) (policy.Ban, error) {
	req := BanRequest{IP: ip.String(), Reason: reason}
	if d != 0 {
		req.Duration = d.String()
	}
	var b policy.Ban
	err := c.do(ctx, http.MethodPost, "/v1/bans", req, http.StatusCreated, &b)
	return b, err
}

// RemoveBan lifts the ban of ip; an error matching ErrNotFound when ip is
// not banned.
func (c *Client) RemoveBan(ctx context.Context, ip netip.Addr) error {
	return c.do(ctx, http.MethodDelete, "/v1/bans/"+url.PathEscape(ip.String()), nil, http.StatusNoContent, nil)
}

// ListSessions returns the live sessions.
func (c *Client) ListSessions(ctx context.Context) ([]SessionInfo, error) {
	var body sessionsBody
	err := c.do(ctx, http.MethodGet, "/v1/sessions", nil, http.StatusOK, &body)
	return body.Sessions, err
}

// Limits returns the admission counters.
func (c *Client) Limits(ctx context.Context) (policy.AdmissionStats, error) {
	var st policy.AdmissionStats
	err := c.do(ctx, http.MethodGet, "/v1/limits", nil, http.StatusOK, &st)
	return st, err
}

// Health checks that the gateway answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, http.StatusOK, nil)
}

func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return fmt.Errorf("admin: reading the answer: %w", err)
	}
	if resp.StatusCode != want {
		var e errorBody
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return &APIError{StatusCode: resp.StatusCode, Message: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin: decoding the answer: %w", err)
	}
	return nil
}
