package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testdlp"
)

// TestGatewayDLPVsftpd: inspect.dlp in front of vsftpd, uploads by curl.
// With cards blocked above 10, a file holding 11 card numbers across chunk
// boundaries is refused with 550 and nothing is left on vsftpd, a clean file
// of the same size passes; the same gzip-compressed. With alert, the file
// passes and the audit file has an inspection record naming the detector
// and the count, never the numbers.
func TestGatewayDLPVsftpd(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)
	v := startVsftpd(ctx, t, tlsNone)
	local := t.TempDir()
	const size = 256 << 10
	files := map[string][]byte{
		"cards.txt": testdlp.File(11, size), "clean.txt": testdlp.File(0, size),
		"cards.txt.gz": testdlp.Gzip(testdlp.File(11, size)), "clean.txt.gz": testdlp.Gzip(testdlp.File(0, size)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(local, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, action := range []string{"block", "alert"} {
		t.Run(action, func(t *testing.T) {
			auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
			cfg := newGatewayConfig(t, v.Addr, tlsNone, "")
			cfg.Extra = fmt.Sprintf("inspect:\n  dlp:\n    enabled: true\n    cards: {threshold: 10, action: %s}\naudit:\n  file:\n    path: %s\n", action, auditPath)
			gw := startGateway(ctx, t, cfg)
			cl := gw.client(tlsExplicit, false, v.User)
			for _, name := range []string{"cards.txt", "clean.txt", "cards.txt.gz", "clean.txt.gz"} {
				remote := action + "-" + name
				run := cl.upload(ctx, t, filepath.Join(local, name), remote)
				blocked := action == "block" && strings.HasPrefix(name, "cards")
				stored, statErr := os.ReadFile(filepath.Join(v.Root, remote))
				switch {
				case blocked && (run.Err == nil || !strings.Contains(run.Output, "550 Transfer blocked by content policy (ref ")):
					t.Errorf("%s: not blocked with 550\n%s\n%s", remote, run, gw.diagnostics())
				case blocked && statErr == nil:
					t.Errorf("%s: the blocked upload is on vsftpd (%d bytes)\n%s", remote, len(stored), v.diagnostics())
				case !blocked && run.Err != nil:
					t.Errorf("%s: %v\n%s\n%s", remote, run.Err, run, gw.diagnostics())
				case !blocked && !bytes.Equal(stored, files[name]):
					t.Errorf("%s: stored file differs (%v)", remote, statErr)
				}
			}
			// The inspection records: one per file with cards.
			var recs []map[string]any
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				recs = recs[:0]
				b, _ := os.ReadFile(auditPath)
				if bytes.Contains(b, []byte(testdlp.Card)) {
					t.Fatal("the audit file holds a card number")
				}
				for _, line := range bytes.Split(b, []byte("\n")) {
					var r map[string]any
					if json.Unmarshal(line, &r) == nil && r["kind"] == "inspection" {
						recs = append(recs, r)
					}
				}
				if len(recs) >= 2 {
					break
				}
			}
			if len(recs) != 2 {
				t.Fatalf("%d inspection records, want 2\n%s", len(recs), gw.diagnostics())
			}
			for _, r := range recs {
				x, _ := r["inspection"].(map[string]any)
				if x["detector"] != "cards" || x["count"] != float64(11) || x["action"] != action || r["user"] != v.User.Name {
					t.Errorf("record %v", r)
				}
			}
			if log := gw.proc.Log(); !strings.Contains(log, `"message":"content inspection finding"`) || !strings.Contains(log, `"detector":"cards"`) {
				t.Errorf("no log line of the finding\n%s", gw.diagnostics())
			}
			gw.assertLogOmits(t, v.User.Password, testdlp.Card)
		})
	}
}
