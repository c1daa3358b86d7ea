package interop

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testdlp"
)

// TestGatewayHoldVsftpd: inspect.downloads: hold in front of vsftpd,
// downloads by curl. With cards blocked above 10, a file holding 11 card
// numbers is refused with 550 (the gateway's transfer line: curl stops at
// the reset data connection) and curl writes not a byte of it; a clean
// file of the same size, held partly on disk, arrives whole (SHA-256), and
// the spill directory is empty after.
func TestGatewayHoldVsftpd(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, 2*time.Minute)
	v := startVsftpd(ctx, t, tlsNone)
	local := t.TempDir()
	const size = 1 << 20
	// The card numbers come after 768 KiB of clean text: streamed, that
	// much would reach the client before the block.
	dirty := append(testdlp.File(0, 768<<10), testdlp.File(11, size-768<<10)...)
	files := map[string][]byte{"cards.txt": dirty, "clean.txt": testdlp.File(0, size)}
	for name, data := range files {
		src := filepath.Join(local, name)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v.put(t, src, name)
	}
	spill := t.TempDir()
	cfg := newGatewayConfig(t, v.Addr, tlsNone, "")
	cfg.Extra = fmt.Sprintf("inspect:\n  downloads: hold\n  hold: {memory_bytes: 64KiB, dir: %s}\n"+
		"  dlp:\n    enabled: true\n    directions: downloads\n    cards: {threshold: 10, action: block}\n", spill)
	gw := startGateway(ctx, t, cfg)
	cl := gw.client(tlsExplicit, false, v.User)

	out := filepath.Join(local, "got-cards.txt")
	run := cl.download(ctx, t, "cards.txt", out)
	// The data connection is reset without a byte: curl stops there (Recv
	// failure) and never reads the 550 that follows.
	if run.Err == nil {
		t.Errorf("cards.txt: curl succeeded\n%s\n%s", run, gw.diagnostics())
	}
	// The gateway resets the data connection first and then ends the
	// transfer, its line included: curl may be gone before the line is.
	refused := func() bool {
		for _, line := range strings.Split(gw.proc.Log(), "\n") {
			if strings.Contains(line, `"message":"transfer"`) && strings.Contains(line, `"path":"cards.txt"`) &&
				strings.Contains(line, `"code":550`) && strings.Contains(line, `"bytes":0,`) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !refused() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !refused() {
		t.Errorf("cards.txt: no transfer line with 550 and 0 bytes\n%s", gw.diagnostics())
	}
	if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
		t.Errorf("curl wrote %d bytes of the blocked download", len(b))
	}

	out = filepath.Join(local, "got-clean.txt")
	run = cl.download(ctx, t, "clean.txt", out)
	got, err := os.ReadFile(out)
	if run.Err != nil || err != nil || sha256.Sum256(got) != sha256.Sum256(files["clean.txt"]) {
		t.Errorf("clean.txt: %v, %d bytes, SHA-256 differs\n%s\n%s", run.Err, len(got), run, gw.diagnostics())
	}
	if log := gw.proc.Log(); !strings.Contains(log, `"held_on_disk":983040`) {
		t.Errorf("no transfer line of a download held partly on disk\n%s", gw.diagnostics())
	}
	if names, _ := os.ReadDir(spill); len(names) != 0 {
		t.Errorf("files left in the spill directory: %v", names)
	}
	if bytes.Contains([]byte(gw.proc.Log()), []byte(testdlp.Card)) {
		t.Error("the log holds a card number")
	}
}
