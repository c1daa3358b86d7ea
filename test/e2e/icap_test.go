package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/testicap"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// TestICAPScan: with the ICAP filter in front of the demo backend and a
// real c-icap with ClamAV (FTPSGATE_INTEROP=1), an upload of the file the
// test signature matches is refused with 550 naming the threat and is
// removed from the backend; a clean file of the same size passes and
// stays; a download of the infected file ends with 550 instead of 226.
func TestICAPScan(t *testing.T) {
	infected := randomBytes(t, 2<<20+11)
	scanner := testicap.Start(t, infected)
	srv, err := icap.ParseServer(scanner.URL())
	if err != nil {
		t.Fatal(err)
	}
	client, err := icap.New(icap.Config{Servers: []icap.Server{srv}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	g := startGateway(t, func(c *proxy.Config) {
		c.Filters = func(m filter.Meta) []filter.Filter { return client.Filters(m) }
	})
	c := dial(t, g, "explicit")

	err = c.Stor("bad.bin", bytes.NewReader(infected))
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != 550 || !strings.Contains(tp.Msg, "Transfer blocked: "+scanner.Threat(0)+" (ref ") {
		t.Fatalf("STOR of the signature file: %v, want 550 naming %s", err, scanner.Threat(0))
	}
	if _, err := os.Stat(filepath.Join(g.root, "bad.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the infected upload is still on the backend: %v", err)
	}

	clean := randomBytes(t, len(infected))
	if err := c.Stor("good.bin", bytes.NewReader(clean)); err != nil {
		t.Fatalf("STOR of a clean file: %v", err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(g.root, "good.bin")), clean) {
		t.Fatal("the clean upload differs on the backend")
	}

	if err := os.WriteFile(filepath.Join(g.root, "planted.bin"), infected, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("planted.bin")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	_, _ = io.Copy(io.Discard, r)
	if err := r.Close(); !errors.As(err, &tp) || tp.Code != 550 || !strings.Contains(tp.Msg, scanner.Threat(0)) {
		t.Fatalf("RETR of the signature file, final reply: %v, want 550 naming %s", err, scanner.Threat(0))
	}
	if got := retrAll(t, c, "good.bin", 0); !bytes.Equal(got, clean) {
		t.Fatal("the clean download differs")
	}
}
