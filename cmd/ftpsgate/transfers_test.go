package main

import (
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/proxy"
)

// TestTransfersHash: transfers.hash is uploads by default, all and off
// are taken, anything else is an error naming the key.
func TestTransfersHash(t *testing.T) {
	for value, want := range map[string]proxy.HashMode{"": proxy.HashUploads, "uploads": proxy.HashUploads, "all": proxy.HashAll, "off": proxy.HashOff} {
		text := goodConfig
		if value != "" {
			text = strings.Replace(goodConfig, "ports: 50000-50019", "ports: 50000-50019\ntransfers:\n  hash: "+value, 1)
		}
		cfg, err := loadFile(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%q: %v", value, err)
		}
		if got := cfg.proxy.Hash; got != want {
			t.Errorf("transfers.hash %q: %v, want %v", value, got, want)
		}
	}
	text := strings.Replace(goodConfig, "ports: 50000-50019", "ports: 50000-50019\ntransfers:\n  hash: sometimes", 1)
	code, out, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if code == 0 || !strings.Contains(errOut, `transfers.hash: "sometimes" is not a hash mode`) {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestHashCommandMaxSize: transfers.hash_command_max_size is 1 GiB by
// default, takes sizes with units, 0 turns the computed HASH off (-1 for
// the engine, whose 0 is its default), and a bad size names the key.
func TestHashCommandMaxSize(t *testing.T) {
	for value, want := range map[string]int64{"": 1 << 30, "2MiB": 2 << 20, "0": -1} {
		text := goodConfig
		if value != "" {
			text = strings.Replace(goodConfig, "ports: 50000-50019", "ports: 50000-50019\ntransfers:\n  hash_command_max_size: "+value, 1)
		}
		cfg, err := loadFile(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%q: %v", value, err)
		}
		if got := cfg.proxy.HashCommandMaxSize; got != want {
			t.Errorf("transfers.hash_command_max_size %q: %d, want %d", value, got, want)
		}
	}
	text := strings.Replace(goodConfig, "ports: 50000-50019", "ports: 50000-50019\ntransfers:\n  hash_command_max_size: lots", 1)
	code, out, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if code == 0 || !strings.Contains(errOut, "transfers.hash_command_max_size") {
		t.Errorf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
}
