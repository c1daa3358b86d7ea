package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testdlp"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/metrics"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// startInspected starts a gateway with the DLP policy cfg, its findings
// going to an audit trail (file sink in dir) and to metrics; opts change
// the gateway's configuration further.
func startInspected(t *testing.T, cfg dlp.Config, opts ...option) (*gateway, string, *metrics.Metrics) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := audit.OpenFile(audit.FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	trail := audit.NewTrail(audit.TrailConfig{Instance: "e2e", Log: zerolog.Nop()}, f)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := trail.Close(ctx); err != nil {
			t.Errorf("audit trail: %v", err)
		}
	})
	mets := metrics.New()
	pol, err := dlp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol.EmitTo(events.Multi{trail, mets})
	g := startGatewayWith(t, []proxy.Option{proxy.WithEvents(trail)}, append([]option{func(c *proxy.Config) { c.Filters = pol.Hook }}, opts...)...)
	return g, path, mets
}

func inspectionRecords(t *testing.T, path string, want int) []audit.Record {
	t.Helper()
	var out []audit.Record
	waitLong(t, func() bool {
		out = out[:0]
		for _, r := range readRecords(t, path) {
			if r.Kind == audit.KindInspection {
				out = append(out, r)
			}
		}
		return len(out) >= want
	}, fmt.Sprintf("%d inspection records", want))
	return out
}

// TestDLPBlock: with cards blocked above 10, an upload holding 11 card
// numbers across chunk boundaries is refused with 550 and a reference id,
// and nothing is left on the backend; a clean file of the same size
// passes; the same gzip-compressed. The audit record names the detector,
// the count and the reference id, never the numbers. A download holding
// them is cut with 426.
func TestDLPBlock(t *testing.T) {
	cfg := dlp.Defaults()
	cfg.Enabled, cfg.Directions = true, dlp.Both
	cfg.Cards = dlp.Rule{Enabled: true, Threshold: 10, Action: dlp.Block}
	g, path, mets := startInspected(t, cfg)
	c := dial(t, g, "explicit")

	const size = 256 << 10
	dirty, clean := testdlp.File(11, size), testdlp.File(0, size)
	if bytes.Count(dirty, []byte(testdlp.Card)) != 11 || len(clean) != len(dirty) {
		t.Fatal("test files")
	}
	var refs []string
	for _, tc := range []struct {
		name string
		data []byte
	}{{"cards.txt", dirty}, {"cards.txt.gz", testdlp.Gzip(dirty)}} {
		err := c.Stor(tc.name, bytes.NewReader(tc.data))
		var tp *textproto.Error
		if !errors.As(err, &tp) || tp.Code != 550 || !strings.HasPrefix(tp.Msg, "Transfer blocked by content policy (ref ") {
			t.Fatalf("STOR %s: %v, want 550 Transfer blocked by content policy", tc.name, err)
		}
		refs = append(refs, strings.TrimSuffix(strings.TrimPrefix(tp.Msg, "Transfer blocked by content policy (ref "), ")."))
		if _, err := os.Stat(filepath.Join(g.root, tc.name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the blocked upload is on the backend: %v", tc.name, err)
		}
	}
	for name, data := range map[string][]byte{"clean.txt": clean, "clean.txt.gz": testdlp.Gzip(clean)} {
		if err := c.Stor(name, bytes.NewReader(data)); err != nil {
			t.Fatalf("STOR %s: %v", name, err)
		}
		if !bytes.Equal(readFile(t, filepath.Join(g.root, name)), data) {
			t.Fatalf("%s differs on the backend", name)
		}
	}

	// A download: cut with 426.
	if err := os.WriteFile(filepath.Join(g.root, "out.txt"), dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("out.txt")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	got, _ := io.ReadAll(r)
	var tp *textproto.Error
	if err := r.Close(); !errors.As(err, &tp) || tp.Code != 426 || !strings.Contains(tp.Msg, "content policy") {
		t.Fatalf("RETR final reply: %v, want 426 (%d bytes passed)", err, len(got))
	}
	if len(got) >= len(dirty) {
		t.Fatalf("the whole blocked download passed (%d bytes)", len(got))
	}
	if _, err := c.List("/"); err != nil {
		t.Fatalf("LIST after the blocks: %v", err)
	}

	recs := inspectionRecords(t, path, 3)
	for i, r := range recs[:2] {
		x := r.Inspection
		if x.Detector != "cards" || x.Count != 11 || x.Action != "block" || x.Ref != refs[i] || x.Direction != "upload" || r.User != user {
			t.Fatalf("record %d: %+v %+v", i, r, x)
		}
	}
	if x := recs[2].Inspection; x.Direction != "download" || x.Action != "block" || x.Detector != "cards" || x.Count != 11 {
		t.Fatalf("download record %+v", x)
	}
	if b := readFile(t, path); bytes.Contains(b, []byte(testdlp.Card)) {
		t.Fatal("the audit file holds a card number")
	}
	if strings.Contains(g.logs.String(), testdlp.Card) {
		t.Fatal("the log holds a card number")
	}
	rec := httptest.NewRecorder()
	mets.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if out := rec.Body.String(); !strings.Contains(out, `ftpsgate_inspection_verdicts_total{action="block",detector="cards"} 3`) ||
		!strings.Contains(out, `ftpsgate_inspection_scanned_bytes_total{direction="upload"}`) {
		t.Fatalf("metrics:\n%s", out)
	}
}

// TestDLPAlert: in alert mode the upload with 11 card numbers passes whole,
// with an inspection record naming the detector and the count.
func TestDLPAlert(t *testing.T) {
	cfg := dlp.Defaults()
	cfg.Enabled = true
	cfg.Cards = dlp.Rule{Enabled: true, Threshold: 10, Action: dlp.Alert}
	g, path, _ := startInspected(t, cfg)
	c := dial(t, g, "explicit")
	dirty := testdlp.File(11, 256<<10)
	for name, data := range map[string][]byte{"cards.txt": dirty, "cards.txt.gz": testdlp.Gzip(dirty)} {
		if err := c.Stor(name, bytes.NewReader(data)); err != nil {
			t.Fatalf("STOR %s: %v", name, err)
		}
		if !bytes.Equal(readFile(t, filepath.Join(g.root, name)), data) {
			t.Fatalf("%s differs on the backend", name)
		}
	}
	recs := inspectionRecords(t, path, 2)
	for _, r := range recs {
		if x := r.Inspection; x.Detector != "cards" || x.Count != 11 || x.Action != "alert" || x.Ref != "" || !strings.HasPrefix(x.Path, "cards.txt") {
			t.Fatalf("record %+v", x)
		}
	}
	if b := readFile(t, path); bytes.Contains(b, []byte(testdlp.Card)) {
		t.Fatal("the audit file holds a card number")
	}
}
