package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/fleet"
)

// The fleet section: off without addresses, typed once, problems named by
// key, the password from a file or the environment and never in the
// configuration.
func TestFleetConfig(t *testing.T) {
	cfg, err := loadFile(writeConfig(t, minimalYAML))
	if err != nil || cfg.shared != nil {
		t.Fatalf("off by default: %v %+v", err, cfg.shared)
	}
	pw := filepath.Join(t.TempDir(), "redis.pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = loadFile(writeConfig(t, minimalYAML+"fleet: {redis: {addresses: ['127.0.0.1:6379'], password_file: "+pw+"}, replica: gw-1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.shared
	if c == nil || c.Password != "s3cret" || c.Replica != "gw-1" || c.OnStoreError != fleet.ModeClosed ||
		c.Timeout != 200*time.Millisecond || c.Lease != 15*time.Second || c.KeyPrefix != "ftpsgate:" {
		t.Fatalf("%+v", c)
	}
	t.Setenv("FLEET_TEST_REDIS_PW", "from-env")
	cfg, err = loadFile(writeConfig(t, minimalYAML+"fleet: {redis: {addresses: ['127.0.0.1:6379'], password_env: FLEET_TEST_REDIS_PW}, on_store_error: local}\n"))
	if err != nil || cfg.shared.Password != "from-env" || cfg.shared.OnStoreError != fleet.ModeLocal {
		t.Fatalf("%v %+v", err, cfg.shared)
	}
	for _, tt := range []struct{ yaml, key string }{
		{"fleet: {redis: {addresses: ['nohost']}}\n", "fleet.redis.addresses[0]"},
		{"fleet: {redis: {addresses: ['a:1']}, on_store_error: maybe}\n", "fleet.on_store_error"},
		{"fleet: {redis: {addresses: ['a:1']}, timeout: 1h}\n", "fleet.timeout"},
		{"fleet: {redis: {addresses: ['a:1']}, lease: 1s}\n", "fleet.lease"},
		{"fleet: {redis: {addresses: ['a:1']}, lease: soon}\n", "fleet.lease"},
		{"fleet: {redis: {addresses: ['a:1']}, key_prefix: 'a b'}\n", "fleet.key_prefix"},
		{"fleet: {redis: {addresses: ['a:1'], db: -1}}\n", "fleet.redis.db"},
		{"fleet: {redis: {addresses: ['a:1'], password_file: /nonexistent/pw}}\n", "fleet.redis.password_file"},
		{"fleet: {redis: {addresses: ['a:1'], password_env: FLEET_TEST_UNSET_VAR}}\n", "fleet.redis.password_env"},
		{"fleet: {redis: {addresses: ['a:1'], tls: {ca_file: /x}}}\n", "fleet.redis.tls.enabled"},
		{"fleet: {redis: {addresses: ['a:1'], tls: {enabled: true, ca_file: /nonexistent/ca.pem}}}\n", "fleet.redis.tls"},
	} {
		_, err := loadFile(writeConfig(t, minimalYAML+tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.key+":") {
			t.Errorf("%q: %v, want a problem of %s", tt.yaml, err, tt.key)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("the password reached an error: %v", err)
		}
	}
}

// TestFleetWarnings: on_store_error local, a remote Redis in clear and one
// without a password are warned of; a loopback Redis in closed mode is not.
func TestFleetWarnings(t *testing.T) {
	keys := func(yaml string) map[string]bool {
		t.Helper()
		cfg, err := loadFile(writeConfig(t, minimalYAML+yaml))
		if err != nil {
			t.Fatal(err)
		}
		_, ws := warnings(cfg, 1<<20)
		out := map[string]bool{}
		for _, w := range ws {
			if strings.HasPrefix(w.Key, "fleet.") {
				out[w.Key] = true
			}
		}
		return out
	}
	if k := keys("fleet: {redis: {addresses: ['127.0.0.1:6379']}}\n"); len(k) != 0 {
		t.Errorf("loopback Redis, closed: %v", k)
	}
	k := keys("fleet: {redis: {addresses: ['10.1.2.3:6379']}, on_store_error: local}\n")
	for _, key := range []string{"fleet.on_store_error", "fleet.redis.tls.enabled", "fleet.redis.password_file"} {
		if !k[key] {
			t.Errorf("no warning of %s: %v", key, k)
		}
	}
}
