package main

import (
	"strings"
	"testing"
)

// inspect.downloads and inspect.hold: stream by default, checked with
// their keys named, typed into the proxy's Config.
func TestHoldConfig(t *testing.T) {
	for _, tt := range []struct{ yaml, key string }{
		{"inspect: {downloads: later}\n", "inspect.downloads"},
		{"inspect: {downloads: hold, hold: {max_bytes: lots}}\n", "inspect.hold.max_bytes"},
		{"inspect: {downloads: hold, hold: {memory_bytes: 2GiB}}\n", "inspect.hold.memory_bytes"},
		{"inspect: {downloads: hold, hold: {dir: /nonexistent/ftpsgate}}\n", "inspect.hold.dir"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+":") {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
	}
	cfg, err := loadFile(writeConfig(t, minimalYAML))
	if err != nil || cfg.proxy.HoldDownloads {
		t.Fatalf("stream by default: %v %v", err, cfg.proxy.HoldDownloads)
	}
	if cfg.proxy.Hold.MaxBytes != 1<<30 || cfg.proxy.Hold.MemoryBytes != 8<<20 {
		t.Fatalf("defaults %+v", cfg.proxy.Hold)
	}
	dir := t.TempDir()
	cfg, err = loadFile(writeConfig(t, minimalYAML+"inspect: {downloads: hold, hold: {max_bytes: 10MiB, memory_bytes: 1MiB, dir: "+dir+"}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.proxy.Hold; !cfg.proxy.HoldDownloads || h.MaxBytes != 10<<20 || h.MemoryBytes != 1<<20 || h.Dir != dir {
		t.Fatalf("%v %+v", cfg.proxy.HoldDownloads, h)
	}
}

// TestHoldWarning: hold with nothing inspecting downloads is warned of;
// with DLP on downloads it is not.
func TestHoldWarning(t *testing.T) {
	has := func(yaml string) bool {
		t.Helper()
		cfg, err := loadFile(writeConfig(t, minimalYAML+yaml))
		if err != nil {
			t.Fatal(err)
		}
		_, ws := warnings(cfg, 1<<20)
		for _, w := range ws {
			if w.Key == "inspect.downloads" {
				return true
			}
		}
		return false
	}
	if !has("inspect: {downloads: hold, dlp: {enabled: true}}\n") {
		t.Error("hold with DLP on uploads only: no warning")
	}
	if has("inspect: {downloads: hold, dlp: {enabled: true, directions: both}}\n") {
		t.Error("hold with DLP on downloads: warned")
	}
}
