package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults of HTTPConfig.
const (
	DefaultHTTPBatch      = 100
	DefaultHTTPTimeout    = 10 * time.Second
	DefaultHTTPSourceType = "ftpsgate:audit"
	DefaultHTTPSource     = "ftpsgate"
	// httpMaxToken bounds the token file.
	httpMaxToken = 4096
	// httpErrBody is how much of an error reply's body goes in the error.
	httpErrBody = 512
)

// HTTPConfig configures the HTTP sink (keys under audit.http): JSON
// batches in the Splunk HTTP Event Collector format. The zero value of
// each field but URL takes its default.
type HTTPConfig struct {
	URL        string        // key url; required, https:// (e.g. https://splunk:8088/services/collector/event)
	TokenFile  string        // key token_file; the bearer token, alone in the file (trailing newline ignored); required
	CAFile     string        // key ca_file; empty: the system roots
	CertFile   string        // key cert_file; a client certificate (with key_file)
	KeyFile    string        // key key_file
	Batch      int           // key batch; records per POST, default 100
	Timeout    time.Duration // key timeout; one POST, default 10s
	SourceType string        // key sourcetype; default ftpsgate:audit
	Source     string        // key source; default ftpsgate
	Index      string        // key index; empty: the token's default index
	Host       string        // key host; default os.Hostname()
	// TokenScheme is the Authorization scheme (key token_scheme; default
	// Bearer; Splunk's own collector wants "Splunk").
	TokenScheme string
	// InsecureSkipVerify turns the collector's certificate check off (key
	// insecure_skip_verify). Weakens security.
	InsecureSkipVerify bool
	// AllowHTTP lets url be http:// (key allow_http): the token and the
	// records cross the network in clear. Weakens security.
	AllowHTTP bool
}

func (c *HTTPConfig) batch() int {
	if c.Batch <= 0 {
		return DefaultHTTPBatch
	}
	return c.Batch
}

// Validate checks c; problems name their key relative to audit.http.
func (c *HTTPConfig) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, confkey.Errorf("url", "required"))
	case err != nil:
		errs = append(errs, confkey.New("url", err))
	case u.Scheme == "http" && !c.AllowHTTP:
		errs = append(errs, confkey.Errorf("url", "%s is plain http: the token and the records would cross the network in clear (allow_http: true to accept that)", c.URL))
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		errs = append(errs, confkey.Errorf("url", "%q: want https://host[:port]/path", c.URL))
	}
	if c.TokenFile == "" {
		errs = append(errs, confkey.Errorf("token_file", "required (a file holding the collector's token)"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, confkey.Errorf("cert_file", "cert_file and key_file go together"))
	}
	if c.Batch < 0 {
		errs = append(errs, confkey.Errorf("batch", "%d is negative", c.Batch))
	}
	if c.Timeout < 0 {
		errs = append(errs, confkey.Errorf("timeout", "%s is negative", c.Timeout))
	}
	if strings.ContainsAny(c.TokenScheme, " \r\n") {
		errs = append(errs, confkey.Errorf("token_scheme", "%q: one word", c.TokenScheme))
	}
	return errors.Join(errs...)
}

// HTTP is the HTTP sink: each Write POSTs the records in batches of
// Batch, each as {"time":…, "host":…, "source":…, "sourcetype":…,
// "event": RECORD} (objects one after the other, as the HEC takes them),
// with Authorization: Bearer TOKEN. A reply other than 2xx, or no reply
// within Timeout, is an error; batches POSTed before it are not undone,
// so a retry may deliver them again (same record ids).
type HTTP struct {
	cfg    HTTPConfig
	url    string
	auth   string
	host   string
	client *http.Client
}

// NewHTTP checks cfg, reads the token and certificates and returns the
// sink.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, confkey.Under("audit.http", err)
	}
	token, err := readToken(cfg.TokenFile)
	if err != nil {
		return nil, confkey.New("audit.http.token_file", err)
	}
	tc, err := clientTLS("audit.http", cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	host := cfg.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	tr := &http.Transport{
		TLSClientConfig:       tc,
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   remoteOrDur(cfg.Timeout, DefaultHTTPTimeout),
		ResponseHeaderTimeout: remoteOrDur(cfg.Timeout, DefaultHTTPTimeout),
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &HTTP{
		cfg:  cfg,
		url:  cfg.URL,
		auth: remoteOr(cfg.TokenScheme, "Bearer") + " " + token,
		host: host,
		client: &http.Client{Transport: tr, Timeout: remoteOrDur(cfg.Timeout, DefaultHTTPTimeout),
			// A redirect would take the token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

// readToken reads a token file: one line, bounded, not empty.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, httpMaxToken+1))
	if err != nil {
		return "", err
	}
	if len(b) > httpMaxToken {
		return "", fmt.Errorf("%s is longer than %d bytes", path, httpMaxToken)
	}
	tok := strings.TrimRight(string(b), "\r\n")
	if tok == "" || strings.ContainsAny(tok, "\r\n \t") {
		return "", fmt.Errorf("%s: want the token alone on one line", path)
	}
	return tok, nil
}

// Name is "http".
func (h *HTTP) Name() string { return "http" }

// hecEvent is one event of a batch.
type hecEvent struct {
	Time       float64 `json:"time"` // seconds since the epoch, ms precision
	Host       string  `json:"host,omitempty"`
	Source     string  `json:"source,omitempty"`
	SourceType string  `json:"sourcetype,omitempty"`
	Index      string  `json:"index,omitempty"`
	Event      *Record `json:"event"`
}

// Write POSTs recs in batches, in order; it stops at the first batch that
// fails.
func (h *HTTP) Write(ctx context.Context, recs []Record) error {
	for len(recs) > 0 {
		n := min(len(recs), h.cfg.batch())
		if err := h.post(ctx, recs[:n]); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}

func (h *HTTP) post(ctx context.Context, recs []Record) error {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for i := range recs {
		ev := hecEvent{
			Time:       float64(recs[i].Time.UnixMilli()) / 1000,
			Host:       h.host,
			Source:     remoteOr(h.cfg.Source, DefaultHTTPSource),
			SourceType: remoteOr(h.cfg.SourceType, DefaultHTTPSourceType),
			Index:      h.cfg.Index,
			Event:      &recs[i],
		}
		if err := enc.Encode(&ev); err != nil {
			return fmt.Errorf("audit: http: record %s: %w", recs[i].ID, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, &body)
	if err != nil {
		return fmt.Errorf("audit: http: %w", err)
	}
	req.Header.Set("Authorization", h.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("audit: http %s: %w", redactURL(h.url), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, httpErrBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // so the connection can be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("audit: http %s: %d records refused: %s: %q", redactURL(h.url), len(recs), resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// redactURL drops a URL's user information and query (which may hold a
// token) for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(url)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// Close closes idle connections.
func (h *HTTP) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
