package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clock is a settable time for the file sink.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func rec(i int, at time.Time) Record {
	return Record{V: SchemaVersion, ID: fmt.Sprintf("t-%d", i), Time: at, Kind: KindCommand, Session: "s1", User: "alice",
		Command: &Command{Verb: "NOOP", Text: fmt.Sprintf("NOOP %d", i), Code: 200}}
}

// openTestFile opens a sink in a fresh directory with a clock.
func openTestFile(t *testing.T, cfg FileConfig, c *clock) *File {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "audit.jsonl")
	}
	f, err := OpenFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.now = c.now
	f.checkpoint = c.t
	return f
}

// files returns the sink's files in verification order.
func (f *File) files() []string { return append(f.rotated(), f.cfg.Path) }

// writeRecords writes n records, batch at a time, a second apart.
func writeRecords(t *testing.T, f *File, c *clock, from, n, batch int) {
	t.Helper()
	for i := from; i < from+n; i += batch {
		var recs []Record
		for j := i; j < min(i+batch, from+n); j++ {
			c.t = c.t.Add(time.Second)
			recs = append(recs, rec(j, c.t))
		}
		if err := f.Write(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
}

// A clean chain spanning rotations (by size and by age), checkpoints
// included and a restart in the middle, verifies; every line is a record
// with its seq, and the first line of each new file chains to the last
// of the one before.
func TestFileChainAcrossRotation(t *testing.T) {
	pub, priv := newKey(t)
	c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := FileConfig{Path: path, MaxSize: 3000, MaxAge: time.Hour, CheckpointKey: priv, CheckpointInterval: 10 * time.Second, Keep: 100}
	f := openTestFile(t, cfg, c)
	writeRecords(t, f, c, 0, 40, 3)
	c.t = c.t.Add(2 * time.Hour) // by age
	writeRecords(t, f, c, 40, 2, 2)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart continues the chain.
	f = openTestFile(t, cfg, c)
	writeRecords(t, f, c, 42, 10, 4)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	files := f.files()
	if len(files) < 4 {
		t.Fatalf("%d files, want rotations: %v", len(files), files)
	}
	v, err := Verify(files, pub)
	if err != nil {
		t.Fatal(err)
	}
	if v.Checkpoints < 4 || v.Signed != v.Checkpoints || v.Unsigned != 0 || v.StartsAfter != "" || v.Files != len(files) {
		t.Fatalf("verified %+v", v)
	}
	var texts []string
	var seq uint64
	for _, p := range files {
		for _, line := range strings.Split(strings.TrimSuffix(string(readAll(t, p)), "\n"), "\n") {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			seq++
			if r.Seq != seq {
				t.Fatalf("%s: seq %d, want %d", p, r.Seq, seq)
			}
			if r.Kind == KindCommand {
				texts = append(texts, r.Command.Text)
			}
		}
	}
	if len(texts) != 52 || texts[0] != "NOOP 0" || texts[51] != "NOOP 51" {
		t.Fatalf("%d records: %v", len(texts), texts)
	}
	// Without the key the chain still verifies; with another it does not.
	if _, err := Verify(files, nil); err != nil {
		t.Fatal(err)
	}
	other, _ := newKey(t)
	if _, err := Verify(files, other); err == nil || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("another key: %v", err)
	}
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lines(t *testing.T, p string) []string {
	return strings.SplitAfter(strings.TrimSuffix(string(readAll(t, p)), "\n"), "\n")
}

func writeLines(t *testing.T, p string, ls []string) {
	t.Helper()
	s := strings.Join(ls, "")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func lineHash(l string) string {
	sum := sha256.Sum256([]byte(strings.TrimSuffix(l, "\n")))
	return hex.EncodeToString(sum[:])
}

// Each kind of tampering is detected and named by file and line.
func TestVerifyDetectsTampering(t *testing.T) {
	pub, priv := newKey(t)
	tests := []struct {
		name   string
		file   int // index in the file list
		tamper func(ls []string) []string
		line   int // the line named
		what   string
	}{
		{"edited record", 0, func(ls []string) []string {
			ls[4] = strings.Replace(ls[4], `"user":"alice"`, `"user":"mallory"`, 1)
			return ls
		}, 5, "altered"},
		{"edited record, not JSON any more", 0, func(ls []string) []string {
			ls[2] = ls[2][:20] + "\n"
			return ls
		}, 3, "altered"},
		{"deleted record", 0, func(ls []string) []string {
			return append(ls[:3:3], ls[4:]...)
		}, 4, "removed"},
		{"deleted records, first of a file", 1, func(ls []string) []string {
			return ls[2:]
		}, 1, "removed"},
		{"inserted record, chained", 0, func(ls []string) []string {
			var r Record
			_ = json.Unmarshal([]byte(ls[5]), &r)
			r.ID, r.Prev, r.Command.Text = "forged", lineHash(ls[5]), "DELE evidence"
			b, _ := json.Marshal(r)
			return append(ls[:6:6], append([]string{string(b) + "\n"}, ls[6:]...)...)
		}, 7, "inserted"},
		{"inserted record, not chained", 0, func(ls []string) []string {
			var r Record
			_ = json.Unmarshal([]byte(ls[5]), &r)
			r.ID, r.Prev = "forged", strings.Repeat("ab", 32)
			b, _ := json.Marshal(r)
			return append(ls[:6:6], append([]string{string(b) + "\n"}, ls[6:]...)...)
		}, 7, "inserted"},
		{"checkpoint re-signed by another key", -1, func(ls []string) []string {
			i := len(ls) - 1 // Close's checkpoint
			var r Record
			_ = json.Unmarshal([]byte(ls[i]), &r)
			_, other := newKey(t)
			r.Audit.Signature = hex.EncodeToString(ed25519.Sign(other, CheckpointMessage(r.ID, r.Time, r.Seq, r.Audit.Head)))
			b, _ := json.Marshal(r)
			ls[i] = string(b) + "\n"
			return ls
		}, -1, "signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
			f := openTestFile(t, FileConfig{MaxSize: 2500, CheckpointKey: priv, CheckpointInterval: time.Hour}, c)
			writeRecords(t, f, c, 0, 30, 2)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			files := f.files()
			if _, err := Verify(files, pub); err != nil || len(files) < 2 {
				t.Fatalf("clean chain in %d files: %v", len(files), err)
			}
			i := tt.file
			if i < 0 {
				i = len(files) + i
			}
			ls := tt.tamper(lines(t, files[i]))
			writeLines(t, files[i], ls)
			line := tt.line
			if line < 0 {
				line = len(ls) + 1 + line
			}
			_, err := Verify(files, pub)
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("tampering not found: %v", err)
			}
			if p.File != files[i] || p.Line != line || !strings.Contains(p.What, tt.what) {
				t.Fatalf("found %v; want %s:%d %s", p, files[i], line, tt.what)
			}
			t.Log(p)
		})
	}
}

// A torn last line (a crash in the middle of a write) is cut off when the
// sink opens the file again, and the chain goes on.
func TestFileTornLine(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	f := openTestFile(t, FileConfig{}, c)
	writeRecords(t, f, c, 0, 5, 5)
	f.Close()
	fh, err := os.OpenFile(f.cfg.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"v":1,"id":"torn","ki`)
	fh.Close()
	if _, err := Verify(f.files(), nil); err == nil {
		t.Fatal("a torn line verifies")
	}
	f = openTestFile(t, FileConfig{Path: f.cfg.Path}, c)
	writeRecords(t, f, c, 5, 5, 5)
	f.Close()
	v, err := Verify(f.files(), nil)
	if err != nil || v.Records != 10 {
		t.Fatalf("%+v %v", v, err)
	}
}

// Retention keeps the newest Keep rotated files, and none older than
// KeepFor.
func TestFileRetention(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	f := openTestFile(t, FileConfig{MaxAge: time.Minute, Keep: 3}, c)
	for i := range 6 {
		c.t = c.t.Add(2 * time.Minute)
		writeRecords(t, f, c, i, 1, 1)
	}
	if n := len(f.rotated()); n != 3 {
		t.Fatalf("%d rotated files kept, want 3", n)
	}
	f.cfg.KeepFor = 3 * time.Minute
	c.t = c.t.Add(2 * time.Minute)
	writeRecords(t, f, c, 7, 1, 1)
	if n := len(f.rotated()); n != 2 {
		t.Fatalf("%d rotated files kept, want 2 (younger than 3m)", n)
	}
	f.Close()
}

// The keys load from PEM files as openssl writes them.
func TestLoadKeys(t *testing.T) {
	pub, priv := newKey(t)
	dir := t.TempDir()
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	os.WriteFile(filepath.Join(dir, "k.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pder, _ := x509.MarshalPKIXPublicKey(pub)
	os.WriteFile(filepath.Join(dir, "p.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600)
	k, err := LoadPrivateKey(filepath.Join(dir, "k.pem"))
	if err != nil || !k.Equal(priv) {
		t.Fatalf("private key: %v", err)
	}
	p, err := LoadPublicKey(filepath.Join(dir, "p.pem"))
	if err != nil || !p.Equal(pub) {
		t.Fatalf("public key: %v", err)
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "p.pem")); err == nil {
		t.Fatal("a public key loads as a private key")
	}
}

// The verifier's line parser takes any bytes without panicking; what it
// accepts is a record with an ID and a kind, whose hash is the line's.
func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"a-1-1","time":"2026-11-30T00:00:00Z","kind":"login","seq":1}`))
	f.Add([]byte(`{"v":1,"id":"x","kind":"audit","prev":"` + strings.Repeat("0", 64) + `","audit":{"event":"checkpoint","head":"00"}}`))
	f.Add([]byte(`{"v":1,"id":"x","kind":"k","prev":"zz"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseLine(b)
		if err != nil {
			return
		}
		sum := sha256.Sum256(b)
		if e.id == "" || e.kind == "" || e.hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("accepted %q as %+v", b, e)
		}
		if e.prev != "" && len(e.prev) != 64 {
			t.Fatalf("prev %q accepted", e.prev)
		}
		_ = bytes.Clone(b)
	})
}

// A write that fails leaves the chain whole: the next Write opens the file
// again and continues from what it holds.
func TestFileWriteFailure(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	f := openTestFile(t, FileConfig{}, c)
	writeRecords(t, f, c, 0, 3, 3)
	f.f.Close() // the descriptor goes bad under the sink
	if err := f.Write(context.Background(), []Record{rec(3, c.t)}); err == nil {
		t.Fatal("a write to a closed file succeeded")
	}
	writeRecords(t, f, c, 3, 3, 3) // the trail's retry
	f.Close()
	v, err := Verify(f.files(), nil)
	if err != nil || v.Records != 6 {
		t.Fatalf("%+v %v", v, err)
	}
}
