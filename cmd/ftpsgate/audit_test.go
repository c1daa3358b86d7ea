package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/audit"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/proxy"
)

const minimalYAML = "listeners: [{name: a, address: \"127.0.0.1:2121\", tls: explicit}]\nbackend: {address: \"127.0.0.1:21\"}\n"

// writeKeys writes an Ed25519 key pair as openssl does: PKCS #8 and PKIX PEM.
func writeKeys(t *testing.T, dir string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(sk)
	pder, _ := x509.MarshalPKIXPublicKey(pk)
	priv, pub = filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// The audit section: off by default; its values become the file sink's
// configuration; a bad value names its key.
func TestAuditConfig(t *testing.T) {
	cfg, err := loadFile(writeConfig(t, minimalYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.audit.enabled() || cfg.audit.required {
		t.Fatalf("audit on by default: %+v", cfg.audit)
	}
	dir := t.TempDir()
	key, _ := writeKeys(t, dir)
	text := minimalYAML + "audit:\n  required: true\n  queue: 10\n  file:\n    path: " + filepath.Join(dir, "audit.jsonl") +
		"\n    max_size: 1MiB\n    max_age: 1h\n    keep: 3\n    keep_for: 72h\n    checkpoint_key_file: " + key + "\n    checkpoint_interval: 1m\n"
	cfg, err = loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.audit.file
	if !cfg.audit.required || cfg.audit.trail.Queue != 10 || f.MaxSize != 1<<20 || f.MaxAge != time.Hour || f.Keep != 3 ||
		f.KeepFor != 72*time.Hour || f.CheckpointKey == nil || f.CheckpointInterval != time.Minute {
		t.Fatalf("audit %+v, file %+v", cfg.audit, f)
	}
	for _, tt := range []struct{ yaml, key string }{
		{"audit: {required: true}\n", "audit.required"},
		{"audit: {file: {path: /nonexistent/dir/audit.jsonl}}\n", "audit.file.path"},
		{"audit: {file: {path: " + filepath.Join(dir, "a.jsonl") + ", max_size: lots}}\n", "audit.file.max_size"},
		{"audit: {file: {path: " + filepath.Join(dir, "a.jsonl") + ", checkpoint_key_file: " + filepath.Join(dir, "audit.pub") + "}}\n", "audit.file.checkpoint_key_file"},
		{"audit: {file: {checkpoint_key_file: " + key + "}}\n", "audit.file.checkpoint_key_file"},
		{"audit: {queue: -1, file: {path: " + filepath.Join(dir, "a.jsonl") + "}}\n", "audit.queue"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+":") {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}
}

// ftpsgate audit verify passes a clean chain and names the altered line;
// ftpsgate audit tail prints the last records one line each, by kind.
func TestAuditCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile, pubFile := writeKeys(t, dir)
	key, err := audit.LoadPrivateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.jsonl")
	f, err := audit.OpenFile(audit.FileConfig{Path: path, CheckpointKey: key})
	if err != nil {
		t.Fatal(err)
	}
	tr := audit.NewTrail(audit.TrailConfig{Instance: "gw"}, f)
	for _, verb := range []string{"USER demo", "PASS ****", "PWD"} {
		tr.Record(audit.Record{Kind: audit.KindCommand, Session: "s1", User: "demo", Command: &audit.Command{Verb: strings.Fields(verb)[0], Text: verb, Code: 200}})
	}
	tr.Record(audit.Record{Kind: audit.KindTransfer, Session: "s1", User: "demo", Transfer: &audit.Transfer{Verb: "RETR", Direction: "download", Path: "/a file.txt", Bytes: 5, Complete: true, SHA256: "ab"}})
	if err := tr.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI("audit", "verify", "--key", pubFile, path)
	if code != 0 || !strings.Contains(out, "ok: 5 records in 1 files") || !strings.Contains(out, "1 checkpoints, every signature verified") {
		t.Fatalf("verify: %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCLI("audit", "tail", "-n", "2", "--kind", "command", path)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[0], " command id=gw-") || !strings.Contains(lines[0], `text="PASS ****"`) ||
		!strings.HasSuffix(lines[1], "code=200 text=PWD verb=PWD") {
		t.Fatalf("tail: %d\n%s", code, out)
	}
	code, out, _ = runCLI("audit", "tail", "--kind", "transfer", path)
	if code != 0 || !strings.Contains(out, `path="/a file.txt"`) || !strings.Contains(out, "sha256=ab") {
		t.Fatalf("tail transfer: %d\n%s", code, out)
	}

	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "PWD", "RMD", 2)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI("audit", "verify", path)
	if code != 1 || !strings.Contains(out, "FAILED: "+path+":3: record altered") {
		t.Fatalf("verify after an edit: %d\n%s%s", code, out, errs)
	}
}

// compose builds the trail from the audit section and puts it on the event
// stream, beside the metrics: a reload event becomes a record in the file.
func TestComposeAudit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	cfg, err := loadFile(writeConfig(t, minimalYAML+"audit: {required: true, file: {path: "+path+"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := compose(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.auth.close()
	if d.audit == nil {
		t.Fatal("no audit trail")
	}
	if err := d.audit.Ready(); err != nil {
		t.Fatalf("ready: %v", err)
	}
	d.sink.Emit(events.ConfigReload{OK: true})
	closeTrail(d.audit, zerolog.Nop())
	v, err := audit.Verify([]string{path}, nil)
	b, _ := os.ReadFile(path)
	if err != nil || v.Records != 1 || !strings.Contains(string(b), `"kind":"config_reload"`) {
		t.Fatalf("audit file (%v): %s", err, b)
	}
}

// transfers.hash auto: uploads, and downloads too under an audit trail.
func TestHashModeAuto(t *testing.T) {
	for _, tt := range []struct {
		s       string
		audited bool
		want    proxy.HashMode
	}{{"auto", false, proxy.HashUploads}, {"auto", true, proxy.HashAll}, {"AUTO", true, proxy.HashAll},
		{"uploads", true, proxy.HashUploads}, {"off", true, proxy.HashOff}} {
		if got, err := hashMode(tt.s, tt.audited); err != nil || got != tt.want {
			t.Errorf("hashMode(%q, %v) = %v, %v; want %v", tt.s, tt.audited, got, err, tt.want)
		}
	}
	if _, err := hashMode("sometimes", false); err == nil {
		t.Error("hashMode(sometimes) accepted")
	}
}
