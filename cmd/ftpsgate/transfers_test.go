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
