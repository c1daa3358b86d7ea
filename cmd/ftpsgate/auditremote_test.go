package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/filter"
)

// The remote sinks' keys: checked with their key named, warned about when
// they weaken a default, and composed: an xferlog line per file transfer.
func TestAuditRemoteConfig(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ yaml, key string }{
		{"audit: {syslog: {address: 127.0.0.1:6514}}\n", "audit.syslog.spool_dir"},
		{"audit: {syslog: {address: 127.0.0.1:6514, spool_dir: " + dir + ", network: carrier-pigeon}}\n", "audit.syslog.network"},
		{"audit: {syslog: {address: 127.0.0.1:6514, spool_dir: " + dir + ", facility: nowhere}}\n", "audit.syslog.facility"},
		{"audit: {syslog: {address: 127.0.0.1:6514, spool_dir: " + dir + ", spool_max_size: lots}}\n", "audit.syslog.spool_max_size"},
		{"audit: {http: {url: http://127.0.0.1:8088/, token_file: " + token + ", spool_dir: " + dir + "}}\n", "audit.http"},
		{"audit: {http: {url: https://127.0.0.1:8088/, spool_dir: " + dir + "}}\n", "audit.http.token_file"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}

	cfg, err := loadFile(writeConfig(t, minimalYAML+"audit: {syslog: {address: 127.0.0.1:514, network: udp, spool_dir: "+
		filepath.Join(dir, "spool")+"}, http: {url: http://127.0.0.1:8088/, allow_http: true, token_file: "+token+", spool_dir: "+
		filepath.Join(dir, "hspool")+"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, ws := warnings(cfg, 4096)
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	for _, want := range []string{"audit.syslog.network", "audit.http.allow_http"} {
		if !strings.Contains(strings.Join(keys, " "), want) {
			t.Errorf("no warning for %s: %q", want, keys)
		}
	}

	xfer := filepath.Join(dir, "xferlog")
	cfg, err = loadFile(writeConfig(t, minimalYAML+"audit: {xferlog: {path: "+xfer+", utc: true}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := compose(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.auth.close()
	if d.audit == nil {
		t.Fatal("no audit trail with only an xferlog")
	}
	d.sink.Emit(events.Transfer{Session: events.Session{ID: "s1", Client: "192.0.2.7:50000", User: "alice"},
		Verb: "STOR", Upload: true, Path: "/in/a.csv", Bytes: 42, Duration: time.Second, Code: 226, Protected: true})
	closeTrail(d.audit, zerolog.Nop())
	b, _ := os.ReadFile(xfer)
	if line := string(b); !strings.Contains(line, " 192.0.2.7 42 /in/a.csv b _ i r alice ftp ") || !strings.HasSuffix(line, " c\n") {
		t.Errorf("xferlog: %q", line)
	}
}

func TestInspectWarnings(t *testing.T) {
	cfg, err := loadFile(writeConfig(t, minimalYAML+"inspect: {dlp: {enabled: true, gzip: {action: alert}, file_types: {deny: [executable], action: alert}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, ws := warnings(cfg, 4096)
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	for _, want := range []string{"inspect.dlp.gzip.action", "inspect.dlp.file_types.action"} {
		if !strings.Contains(strings.Join(keys, " "), want) {
			t.Errorf("no warning for %s: %q", want, keys)
		}
	}
}

// inspect.icap: its problems name their key, its weakenings are warned
// about, and compose chains it after the DLP filters.
func TestICAPConfig(t *testing.T) {
	for _, tt := range []struct{ yaml, key string }{
		{"inspect: {icap: {servers: [http://127.0.0.1:1344/avscan]}}\n", "inspect.icap.servers[0]"},
		{"inspect: {icap: {servers: [icap://127.0.0.1:1344/avscan], on_error: shrug}}\n", "inspect.icap.on_error"},
		{"inspect: {icap: {servers: [icap://127.0.0.1:1344/avscan], max_size: lots}}\n", "inspect.icap.max_size"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}
	cfg, err := loadFile(writeConfig(t, minimalYAML+"inspect: {dlp: {enabled: true}, icap: {servers: [icap://127.0.0.1:1344/avscan], on_error: allow, partial_transfers: scan}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, ws := warnings(cfg, 4096)
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.Key)
	}
	for _, want := range []string{"inspect.icap.on_error", "inspect.icap.over_max_size", "inspect.icap.partial_transfers"} {
		if !strings.Contains(strings.Join(keys, " "), want) {
			t.Errorf("no warning for %s: %q", want, keys)
		}
	}
	d, err := compose(context.Background(), cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer d.auth.close()
	defer d.icap.Close()
	if d.icap == nil {
		t.Fatal("no ICAP client")
	}
	one := func(filter.Meta) []filter.Filter { return []filter.Filter{filter.NewSHA256()} }
	two := func(filter.Meta) []filter.Filter { return []filter.Filter{filter.NewSHA256(), filter.NewSHA256()} }
	if n := len(chainFilters(one, two)(filter.Meta{})); n != 3 {
		t.Errorf("chained %d filters, want 3", n)
	}
	if n := len(chainFilters(nil, two)(filter.Meta{})); n != 2 {
		t.Errorf("chained %d filters without a first hook, want 2", n)
	}
}
