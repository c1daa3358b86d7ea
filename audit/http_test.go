package audit

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// hecReceiver is an httptest TLS server on loopback that takes HEC
// batches with the right token, or answers status while it is set.
type hecReceiver struct {
	srv    *httptest.Server
	caFile string
	mu     sync.Mutex
	events []hecEvent
	posts  int
	status int
	delay  time.Duration
}

func newHECReceiver(t *testing.T, token string) *hecReceiver {
	t.Helper()
	h := &hecReceiver{}
	ca, err := testpki.NewCA("hec CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	h.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := testpki.WritePEM(h.caFile, 0o644, "CERTIFICATE", ca.DER); err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		status, delay := h.status, h.delay
		h.posts++
		h.mu.Unlock()
		time.Sleep(delay)
		if status != 0 {
			http.Error(w, `{"text":"Server is busy","code":9}`, status)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+token || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
			return
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		var evs []hecEvent
		for {
			var ev hecEvent
			if err := dec.Decode(&ev); err == io.EOF {
				break
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			evs = append(evs, ev)
		}
		h.mu.Lock()
		h.events = append(h.events, evs...)
		h.mu.Unlock()
		_, _ = w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	h.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHTTPBatches: 250 records arrive as 3 POSTs of at most 100 HEC
// events each, with the record in "event", its time, the sourcetype, in
// order; the token travels as a bearer token.
func TestHTTPBatches(t *testing.T) {
	rcv := newHECReceiver(t, "s3cret-token")
	h, err := NewHTTP(HTTPConfig{URL: rcv.srv.URL + "/services/collector/event", TokenFile: tokenFile(t, "s3cret-token"), CAFile: rcv.caFile, Host: "gw1"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	recs := mixedRecords(250)
	if err := h.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if rcv.posts != 3 || len(rcv.events) != 250 {
		t.Fatalf("%d posts, %d events", rcv.posts, len(rcv.events))
	}
	for i, ev := range rcv.events {
		want, _ := json.Marshal(&recs[i])
		got, _ := json.Marshal(ev.Event)
		if string(got) != string(want) || ev.SourceType != "ftpsgate:audit" || ev.Host != "gw1" || ev.Time != float64(recs[i].Time.UnixMilli())/1000 {
			t.Fatalf("event %d: %+v\n got %s\nwant %s", i, ev, got, want)
		}
	}
}

// TestHTTPErrors: a non-2xx reply, a wrong token, an unverified
// certificate and a collector slower than the timeout are errors.
func TestHTTPErrors(t *testing.T) {
	rcv := newHECReceiver(t, "right")
	url := rcv.srv.URL + "/services/collector/event"
	recs := testRecords(3)

	h, err := NewHTTP(HTTPConfig{URL: url, TokenFile: tokenFile(t, "right"), CAFile: rcv.caFile, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rcv.mu.Lock()
	rcv.status = http.StatusServiceUnavailable
	rcv.mu.Unlock()
	if err := h.Write(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "Server is busy") {
		t.Fatalf("503: %v", err)
	}
	rcv.mu.Lock()
	rcv.status, rcv.delay = 0, time.Second
	rcv.mu.Unlock()
	if err := h.Write(context.Background(), recs); err == nil {
		t.Fatal("no error from a collector slower than the timeout")
	}
	rcv.mu.Lock()
	rcv.delay = 0
	rcv.mu.Unlock()
	if err := h.Write(context.Background(), recs); err != nil {
		t.Fatalf("after the collector is back: %v", err)
	}

	wrong, err := NewHTTP(HTTPConfig{URL: url, TokenFile: tokenFile(t, "wrong"), CAFile: rcv.caFile})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if err := wrong.Write(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong token: %v", err)
	}

	unverified, err := NewHTTP(HTTPConfig{URL: url, TokenFile: tokenFile(t, "right")})
	if err != nil {
		t.Fatal(err)
	}
	defer unverified.Close()
	if err := unverified.Write(context.Background(), recs); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unverified collector: %v", err)
	}
}

func TestHTTPValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  HTTPConfig
		want string
	}{
		{HTTPConfig{TokenFile: "t"}, "url: required"},
		{HTTPConfig{URL: "http://x/", TokenFile: "t"}, "url: http://x/ is plain http"},
		{HTTPConfig{URL: "ftp://x/", TokenFile: "t"}, "url:"},
		{HTTPConfig{URL: "https://x/"}, "token_file: required"},
		{HTTPConfig{URL: "https://x/", TokenFile: "t", KeyFile: "k"}, "cert_file:"},
	} {
		if err := c.cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
	if err := (&HTTPConfig{URL: "http://x/", TokenFile: "t", AllowHTTP: true}).Validate(); err != nil {
		t.Errorf("allow_http: %v", err)
	}
	if _, err := NewHTTP(HTTPConfig{URL: "https://x/", TokenFile: tokenFile(t, "")}); err == nil || !strings.Contains(err.Error(), "token_file") {
		t.Errorf("empty token: %v", err)
	}
}
