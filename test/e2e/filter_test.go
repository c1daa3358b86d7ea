package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jlaffaye/ftp"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// transferLine is the gateway's "transfer" log line for verb and path.
type transferLine struct {
	Command     string `json:"cmd"`
	Path        string `json:"path"`
	Bytes       int64  `json:"bytes"`
	Code        int    `json:"code"`
	BackendCode int    `json:"backend_code"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	Offset      string `json:"offset"`
}

func transferLog(t *testing.T, g *gateway, verb, path string) transferLine {
	t.Helper()
	var found *transferLine
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if !strings.Contains(line, `"message":"transfer"`) {
			continue
		}
		var l transferLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l.Command == verb && l.Path == path {
			found = &l
		}
	}
	if found == nil {
		t.Fatalf("no transfer log line for %s %s", verb, path)
	}
	return *found
}

func retrAll(t *testing.T, c *ftp.ServerConn, file string, offset uint64) []byte {
	t.Helper()
	r, err := c.RetrFrom(file, offset)
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("RETR final reply: %v", err)
	}
	return b
}

// TestTransferHash: with the default transfers.hash (uploads), an upload's
// log line carries the SHA-256 and size of the file as it reached the
// backend, and a download's none; with all, downloads too (a resumed one:
// the hash of the part that passed, with its offset); with off, none.
func TestTransferHash(t *testing.T) {
	for _, mode := range []proxy.HashMode{proxy.HashUploads, proxy.HashAll, proxy.HashOff} {
		t.Run(mode.String(), func(t *testing.T) {
			g := startGateway(t, func(c *proxy.Config) { c.Hash = mode })
			c := dial(t, g, "explicit")
			data := randomBytes(t, 3<<20+17)
			if err := c.Stor("hashed.bin", bytes.NewReader(data)); err != nil {
				t.Fatalf("STOR: %v", err)
			}
			if got := sum(readFile(t, filepath.Join(g.root, "hashed.bin"))); got != sum(data) {
				t.Fatalf("stored file hash %s, want %s", got, sum(data))
			}
			up := transferLog(t, g, "STOR", "hashed.bin")
			if up.Code != 226 || up.Bytes != int64(len(data)) {
				t.Fatalf("STOR log line %+v", up)
			}
			if mode == proxy.HashOff {
				if up.SHA256 != "" {
					t.Fatalf("transfers.hash off, yet the upload was hashed: %+v", up)
				}
			} else if up.SHA256 != sum(data) || up.Size != int64(len(data)) {
				t.Fatalf("STOR log line sha256 %s size %d, want %s %d", up.SHA256, up.Size, sum(data), len(data))
			}

			const offset = 1<<20 + 5
			got := retrAll(t, c, "hashed.bin", offset)
			if !bytes.Equal(got, data[offset:]) {
				t.Fatal("resumed download differs")
			}
			down := transferLog(t, g, "RETR", "hashed.bin")
			if mode != proxy.HashAll {
				if down.SHA256 != "" {
					t.Fatalf("transfers.hash %s, yet the download was hashed: %+v", mode, down)
				}
				return
			}
			if down.SHA256 != sum(data[offset:]) || down.Size != int64(len(data)-offset) || down.Offset != "1048581" {
				t.Fatalf("RETR log line %+v, want sha256 %s size %d offset 1048581", down, sum(data[offset:]), len(data)-offset)
			}
		})
	}
}

// veto is a test filter that refuses every transfer in Finish.
type veto struct {
	code int
	n    int64
}

func (v *veto) Write(p []byte) error { v.n += int64(len(p)); return nil }
func (v *veto) Finish(context.Context) (filter.Verdict, error) {
	return filter.Verdict{Veto: true, Code: v.code, Text: "Refused by the test filter."}, nil
}

// TestFilterVeto: a filter's veto in Finish reaches the client instead of
// the backend's 226; a vetoed upload is removed from the backend, a vetoed
// download leaves the file; the log line carries the reply the client got.
func TestFilterVeto(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Filters = func(m filter.Meta) []filter.Filter {
			if m.Direction == filter.Upload {
				return []filter.Filter{&veto{code: 550}}
			}
			return []filter.Filter{&veto{code: 451}}
		}
	})
	c := dial(t, g, "explicit")
	data := randomBytes(t, 1<<20+3)
	err := c.Stor("vetoed.bin", bytes.NewReader(data))
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != 550 {
		t.Fatalf("STOR: %v, want a 550", err)
	}
	if _, err := os.Stat(filepath.Join(g.root, "vetoed.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the vetoed upload is still on the backend: %v", err)
	}
	if l := transferLog(t, g, "STOR", "vetoed.bin"); l.Code != 550 || l.BackendCode != 226 || l.SHA256 != sum(data) {
		t.Fatalf("STOR log line %+v", l)
	}

	if err := os.WriteFile(filepath.Join(g.root, "kept.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("kept.bin")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	_, _ = io.Copy(io.Discard, r)
	if err := r.Close(); !errors.As(err, &tp) || tp.Code != 451 {
		t.Fatalf("RETR final reply: %v, want a 451", err)
	}
	if _, err := os.Stat(filepath.Join(g.root, "kept.bin")); err != nil {
		t.Fatalf("a vetoed download removed the file: %v", err)
	}
	if l := transferLog(t, g, "RETR", "kept.bin"); l.Code != 451 || l.BackendCode != 226 {
		t.Fatalf("RETR log line %+v", l)
	}
	// The session goes on.
	if _, err := c.List("/"); err != nil {
		t.Fatalf("LIST after the vetoes: %v", err)
	}
}

// TestRefusedRESTNoOffset: a REST the backend refuses does not mark the
// next transfer's hash as partial.
func TestRefusedRESTNoOffset(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Hash = proxy.HashAll })
	data := randomBytes(t, 100<<10)
	if err := os.WriteFile(filepath.Join(g.root, "whole.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.send("REST nonsense")
	if rep := c.read(); rep.Code == wire.StatusFileActionPending {
		t.Fatalf("the backend took REST nonsense: %d", rep.Code)
	}
	port := c.epsv()
	dc := c.tlsData(c.dataConn(port, ""))
	c.send("RETR whole.bin")
	c.expect(wire.StatusAboutToSend)
	got, err := io.ReadAll(dc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download: %d bytes, %v", len(got), err)
	}
	c.expect(wire.StatusClosingDataConnection)
	if l := transferLog(t, g, "RETR", "whole.bin"); l.Offset != "" || l.SHA256 != sum(data) {
		t.Fatalf("RETR log line %+v, want the whole file's hash and no offset", l)
	}
}
