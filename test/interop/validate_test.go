package interop

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestGatewayValidate: `ftpsgate validate --config FILE` accepts a good file
// ("configuration ok", exit 0) and rejects passive.ports 50100-50000 with a
// line that names the key.
func TestGatewayValidate(t *testing.T) {
	requireInterop(t)
	t.Parallel()
	results.record(t)
	ctx := testContext(t, time.Minute)
	bin := gatewayBinary(t)

	good := newGatewayConfig(t, "127.0.0.1:2121", tlsNone, "")
	out, err := runValidate(ctx, t, bin, good)
	if err != nil {
		t.Errorf("validate of a good file: %v, want exit 0\n%s\n%s", err, good.YAML(), out)
	}
	if !strings.Contains(out, "configuration ok") {
		t.Errorf("validate of a good file printed %q, want \"configuration ok\"", out)
	}

	bad := good
	bad.PassiveLo, bad.PassiveHi = 50100, 50000
	out, err = runValidate(ctx, t, bin, bad)
	if err == nil {
		t.Errorf("validate accepted passive.ports 50100-50000 (exit 0)\n%s", out)
	}
	named := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "passive.ports:") {
			named = true
			t.Logf("validate: %s", line)
		}
	}
	if !named {
		t.Errorf("validate of passive.ports 50100-50000 printed no line naming \"passive.ports:\"\n%s", out)
	}
}

func runValidate(ctx context.Context, t *testing.T, bin string, cfg gatewayConfig) (string, error) {
	t.Helper()
	path := writeConfig(t, t.TempDir(), cfg.YAML())
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "validate", "--config", path).CombinedOutput()
	return string(out), err
}
