package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/configs"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
)

const goodConfig = `
listeners:
  - name: explicit
    address: 127.0.0.1:2121
    tls: explicit
    require_tls: true
  - name: implicit
    address: 127.0.0.1:2990
    tls: implicit
tls:
  min_version: "1.3"
backend:
  address: 127.0.0.1:21
  tls: none
passive:
  public_host: 203.0.113.10
  ports: 50000-50019
timeouts:
  idle: 2m
log:
  level: debug
  format: json
`

// startComposed loads the configuration at path, composes and starts the
// gateway; at the end of the test it shuts it down and closes what
// compose opened.
func startComposed(t *testing.T, ctx context.Context, path string) *composed {
	t.Helper()
	cfg, err := loadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := compose(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.auth.close)
	if err := d.srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = d.srv.Shutdown(sctx)
	})
	return d
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ftpsgate.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestValidateGood(t *testing.T) {
	code, out, errOut := runCLI("validate", "--config", writeConfig(t, goodConfig))
	// No certificate files: the one weakened setting.
	want := "configuration ok\nwarning: tls.cert_file: empty: a self-signed certificate is generated at start; clients cannot verify the gateway"
	if code != 0 || strings.TrimSpace(out) != want {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	cfg, err := loadFile(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.proxy
	if len(c.Listeners) != 2 || c.Listeners[1].TLS != proxy.TLSImplicit || c.Listeners[0].AllowCleartext {
		t.Errorf("listeners = %+v", c.Listeners)
	}
	if c.Passive.Ports.Low != 50000 || c.Passive.Ports.High != 50019 || c.Passive.PublicHost.String() != "203.0.113.10" {
		t.Errorf("passive = %+v", c.Passive)
	}
	if c.Timeouts.Idle.Minutes() != 2 || c.Timeouts.Connect.Seconds() != 10 {
		t.Errorf("timeouts = %+v", c.Timeouts)
	}
	if !c.TLS.RequireProtectedData || c.TLS.MinVersion != 0x0304 {
		t.Errorf("tls = %+v", c.TLS)
	}
	if c.Bans.KeepSessions {
		t.Error("bans.end_sessions is off by default")
	}
	cfg, err = loadFile(writeConfig(t, goodConfig+"bans:\n  end_sessions: false\n"))
	if err != nil || !cfg.proxy.Bans.KeepSessions {
		t.Errorf("bans.end_sessions: false not applied: %v", err)
	}
}

// TestSafeDefaults: what a configuration leaves out takes the safe value.
func TestSafeDefaults(t *testing.T) {
	text := strings.Replace(goodConfig, "    require_tls: true\n", "", 1)
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.proxy
	if c.Listeners[0].AllowCleartext {
		t.Error("an explicit listener without require_tls allows cleartext logins")
	}
	if c.Limits.MaxSessionsPerIP != 64 || c.Limits.MaxPreLoginPerIP != 16 || c.Limits.MaxSessions != 0 {
		t.Errorf("limits = %+v", c.Limits)
	}
	if c.Timeouts.Login != time.Minute {
		t.Errorf("timeouts.login = %s", c.Timeouts.Login)
	}
	// max_sessions left at 0 is derived from the descriptor limit.
	note, ws := warnings(cfg, 1024)
	if cfg.proxy.Limits.MaxSessions != 235 || !strings.Contains(note, "235") {
		t.Errorf("max_sessions = %d (%s), want 235 from 1024 descriptors", cfg.proxy.Limits.MaxSessions, note)
	}
	for _, w := range ws {
		if w.Key != "tls.cert_file" {
			t.Errorf("unexpected warning %s", w)
		}
	}
}

// TestValidateWarnings: each setting that weakens a safe default is printed
// by validate as a warning naming its key, and validate still succeeds.
func TestValidateWarnings(t *testing.T) {
	text := strings.NewReplacer(
		"require_tls: true", "require_tls: false",
		"min_version: \"1.3\"", "min_version: \"1.3\"\n  data_session_reuse: optional\n  require_protected_data: false",
		"idle: 2m", "idle: 2m\nlimits:\n  max_sessions_per_ip: 0\n  max_prelogin_per_ip: 0\n  max_sessions: 100000000\npolicy:\n  allow_anonymous: true\nactive:\n  enabled: true",
	).Replace(goodConfig)
	code, out, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	for _, key := range []string{
		"listeners[0].require_tls", "tls.require_protected_data", "tls.data_session_reuse", "policy.allow_anonymous",
		"active.enabled", "limits.max_sessions_per_ip", "limits.max_prelogin_per_ip", "limits.max_sessions",
	} {
		if !strings.Contains(out, "warning: "+key+": ") {
			t.Errorf("validate printed no warning for %s:\n%s", key, out)
		}
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	tests := []struct {
		edit string // replaced into goodConfig
		from string
		want string
	}{
		{"ports: 50100-50000", "ports: 50000-50019", "passive.ports: low port 50100 is above high port 50000"},
		{"tls: sideways", "tls: none", "backend.tls:"},
		{"address: 127.0.0.1\n  tls: none", "address: 127.0.0.1:21\n  tls: none", "backend.address:"},
		{"public_host: nosuch.example.test", "public_host: 203.0.113.10", "passive.public_host: nosuch.example.test does not resolve"},
		{"public_host: v6only.example.test", "public_host: 203.0.113.10", "passive.public_host: v6only.example.test resolves to no IPv4 address"},
		{"public_host: 203.0.113.999", "public_host: 203.0.113.10", "passive.public_host: not an IP address: 203.0.113.999"},
		{"public_host: ftp_gw", "public_host: 203.0.113.10", "passive.public_host: \"ftp_gw\" is neither an IP address nor a DNS name"},
		{"public_host: \"2001:db8::1\"", "public_host: 203.0.113.10", "passive.public_host: 2001:db8::1 is not an IPv4 address"},
		{"public_host: ftp.example.test", "public_host: 203.0.113.10", ""},
		{"idle: soon", "idle: 2m", "timeouts.idle:"},
		{"min_version: \"1.0\"", "min_version: \"1.3\"", "tls.min_version:"},
		{"level: loud", "level: debug", "log.level:"},
		{"tls: implicit\n    require_tls: false", "tls: implicit", "listeners[1].require_tls:"},
		{"portz: 1-2", "ports: 50000-50019", "portz"},
		{"min_version: \"1.3\"\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]", "min_version: \"1.3\"", "tls.cipher_suites: TLS_RSA_WITH_AES_128_CBC_SHA is insecure"},
		{"min_version: \"1.3\"\n  curves: [P-192]", "min_version: \"1.3\"", "tls.curves:"},
		{"min_version: \"1.3\"\n  client_auth: require", "min_version: \"1.3\"", "tls.client_ca_file: required"},
		{"min_version: \"1.3\"\n  data_session_reuse: maybe", "min_version: \"1.3\"", "tls.data_session_reuse:"},
		{"min_version: \"1.3\"\n  client_cert_user_case_insensitive: true", "min_version: \"1.3\"", "tls.client_cert_user_case_insensitive: needs client_cert_user"},
		{"tls: none\n  pin_sha256: xyz", "tls: none", "backend.pin_sha256:"},
		{"tls: none\n  proxy_protocol: v3", "tls: none", "backend.proxy_protocol:"},
		{"tls: implicit\n    proxy_protocol: {enabled: true}", "tls: implicit", "listeners[1].proxy_protocol.trusted:"},
		{"tls: implicit\n    proxy_protocol: {enabled: true, trusted: [10.0.0.0/33]}", "tls: implicit", "listeners[1].proxy_protocol.trusted:"},
		{"tls: implicit\n    cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]", "tls: implicit", "listeners[1].cipher_suites:"},
		{"ports: 50000-50019\nlimits:\n  max_passive_per_ip: -1", "ports: 50000-50019", "limits.max_passive_per_ip: must not be negative"},
		{"ports: 50000-50019\nlimits:\n  max_passive_per_ip: many", "ports: 50000-50019", "limits.max_passive_per_ip: \"many\" is not a number or auto"},
		{"tls: none\n  data_ports: 40000-x", "tls: none", "backend.data_ports:"},
		{"tls: none\n  data_ports: 20-21", "tls: none", "backend.data_ports: 20-21: ports below 1024 are always refused"},
		{"address: 127.0.0.1:2121\n    tls: implicit", "address: 127.0.0.1:2990\n    tls: implicit", "listeners[1].address: 127.0.0.1:2121 clashes with listeners[0] (127.0.0.1:2121)"},
		{"address: 0.0.0.0:2990\n    tls: implicit", "address: 127.0.0.1:2990\n    tls: implicit", ""},
		{"ports: 2000-2200", "ports: 50000-50019", "passive.ports: 2000-2200 includes port 2121 of listeners[0] (127.0.0.1:2121)"},
		{"ports: 50000-50019\nadmin:\n  address: 127.0.0.1:50001", "ports: 50000-50019", "admin.address: port 50001 is in the passive range 50000-50019"},
		{"ports: 50000-50019\nadmin:\n  address: \"[::]:2990\"", "ports: 50000-50019", "admin.address: [::]:2990 clashes with listeners[1] (127.0.0.1:2990)"},
	}
	for _, tt := range tests {
		text := strings.Replace(goodConfig, tt.from, tt.edit, 1)
		code, out, errOut := runCLI("validate", "--config", writeConfig(t, text))
		if tt.want == "" {
			if code != 0 {
				t.Errorf("%q: code %d, stderr %q; want no problem", tt.edit, code, errOut)
			}
			continue
		}
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want a line with %q", tt.edit, code, out, errOut, tt.want)
		}
	}
	// Several problems: one line each.
	text := strings.Replace(strings.Replace(goodConfig, "ports: 50000-50019", "ports: 9-1", 1), "idle: 2m", "idle: -1s", 1)
	_, _, errOut := runCLI("validate", "--config", writeConfig(t, text))
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 2 {
		t.Errorf("want two lines, got %q", errOut)
	}
}

// TestClientCertUserCaseInsensitiveKey: the key reaches the TLS policy, off
// by default.
func TestClientCertUserCaseInsensitiveKey(t *testing.T) {
	cfg, err := loadFile(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.proxy.TLS.ClientCertUserCaseInsensitive {
		t.Error("client_cert_user_case_insensitive is on by default")
	}
	text := strings.Replace(goodConfig, "min_version: \"1.3\"", "min_version: \"1.3\"\n  client_auth: require\n  client_ca_file: "+caFile(t)+
		"\n  client_cert_user: cn\n  client_cert_user_case_insensitive: true", 1)
	cfg, err = loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.proxy.TLS.ClientCertUserCaseInsensitive {
		t.Error("client_cert_user_case_insensitive: true not applied")
	}
}

// TestDataSessionReuseModes: user is the default, required its alias,
// session and optional the other modes.
func TestDataSessionReuseModes(t *testing.T) {
	for value, want := range map[string]policy.SessionReuse{
		"": policy.ReuseUser, "user": policy.ReuseUser, "required": policy.ReuseUser,
		"session": policy.ReuseSession, "optional": policy.ReuseOptional,
	} {
		text := goodConfig
		if value != "" {
			text = strings.Replace(goodConfig, "min_version: \"1.3\"", "min_version: \"1.3\"\n  data_session_reuse: "+value, 1)
		}
		cfg, err := loadFile(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%q: %v", value, err)
		}
		if got := cfg.proxy.TLS.DataSessionReuse; got != want {
			t.Errorf("data_session_reuse %q: %v, want %v", value, got, want)
		}
	}
}

// The problems come back as typed errors carrying their keys: nothing has
// to parse a key out of the text.
func TestConfigErrorsCarryKeys(t *testing.T) {
	text := strings.Replace(strings.Replace(goodConfig, "ports: 50000-50019", "ports: 9-1", 1), "idle: 2m", "idle: -1s", 1)
	text = strings.Replace(text, "min_version: \"1.3\"", "min_version: \"1.3\"\n  curves: [P-192]\n  client_auth: require", 1)
	_, err := loadFile(writeConfig(t, text))
	var keys []string
	for _, e := range confkey.List(err) {
		keys = append(keys, e.Key)
	}
	want := []string{"tls.curves", "passive.ports", "timeouts.idle", "tls.client_ca_file"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %q, want %q (%v)", keys, want, err)
	}
	var ke *confkey.Error
	if !errors.As(err, &ke) || ke.Key != "tls.curves" {
		t.Errorf("errors.As: %v", ke)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("FTPSGATE_BACKEND_ADDRESS", "192.0.2.9:2100")
	t.Setenv("FTPSGATE_PASSIVE_PORTS", "51000-51009")
	t.Setenv("FTPSGATE_TIMEOUTS_CONNECT", "3s")
	cfg, err := loadFile(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.proxy.Backend.Address != "192.0.2.9:2100" || cfg.proxy.Passive.Ports.Low != 51000 || cfg.proxy.Timeouts.Connect.Seconds() != 3 {
		t.Fatalf("environment not applied: %+v %+v %+v", cfg.proxy.Backend, cfg.proxy.Passive, cfg.proxy.Timeouts)
	}
}

func TestEmbeddedConfigs(t *testing.T) {
	cfg, err := loadBytes(configs.Demo, map[string]any{"backend.address": "127.0.0.1:2100"})
	if err != nil {
		t.Fatalf("demo config: %v", err)
	}
	if got := cfg.proxy.Listeners[0].Address; got != "127.0.0.1:2121" {
		t.Errorf("demo explicit listener %s", got)
	}
	// The example files parse; only their certificate and secret paths do
	// not exist here.
	for _, name := range []string{"minimal.yaml", "dmz.yaml", "sidecar.yaml", "backends.yaml", "dmz-agent.yaml"} {
		_, err := loadFile(filepath.Join("..", "..", "configs", name))
		for _, line := range strings.Split(errString(err), "\n") {
			if line != "" && !strings.HasPrefix(line, "tls.cert_file:") && !strings.HasPrefix(line, "backend.ca_file:") &&
				!strings.HasPrefix(line, "auth.groups[0].backend_password_file:") && !strings.HasPrefix(line, "auth.local.users_file:") &&
				!(strings.HasPrefix(line, "backends[") && (strings.Contains(line, "].ca_file:") || strings.Contains(line, "].health.password_file:"))) {
				t.Errorf("%s: %s", name, line)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUsage(t *testing.T) {
	if code, out, _ := runCLI("--help"); code != 0 || !strings.Contains(out, "ftpsgate validate") {
		t.Errorf("--help: %d %q", code, out)
	}
	for _, sub := range []string{"run", "validate", "demo"} {
		if code, _, errOut := runCLI(sub, "--help"); code != 0 || !strings.Contains(errOut, "Usage: ftpsgate "+sub) {
			t.Errorf("%s --help: %d %q", sub, code, errOut)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "ftpsgate ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := runCLI("frobnicate"); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
	if code, _, errOut := runCLI("run"); code != 2 || !strings.Contains(errOut, "--config") {
		t.Errorf("run without --config: %d %q", code, errOut)
	}
}

func TestValidateVerbose(t *testing.T) {
	text := strings.Replace(goodConfig, "tls: implicit", "tls: implicit\n    min_version: \"1.2\"\n    cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]", 1)
	code, out, errOut := runCLI("validate", "--verbose", "--config", writeConfig(t, text))
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	for _, want := range []string{"listener explicit", "min_version: TLS 1.3", "listener implicit", "min_version: TLS 1.2", "tls12_suites: TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "data_session_reuse: user"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate --verbose lacks %q:\n%s", want, out)
		}
	}
}

// caFile writes a throw-away CA certificate and returns its path.
func caFile(t *testing.T) string {
	t.Helper()
	f, err := testpki.WriteServer(t.TempDir(), "ftpsgate test CA")
	if err != nil {
		t.Fatal(err)
	}
	return f.CAFile
}

func TestOwnAddr(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" none
	}{
		{"127.0.0.1:9090", "127.0.0.1:9090"},
		{"[::1]:9090", "[::1]:9090"},
		{"[::ffff:127.0.0.1]:9090", "127.0.0.1:9090"},
		{"localhost:9090", "0.0.0.0:9090"},
		{":9090", "0.0.0.0:9090"},
		{"unix:/run/ftpsgate/admin.sock", ""},
		{"", ""},
		{"127.0.0.1", ""},
	} {
		got, ok := ownAddr(tt.in)
		if tt.want == "" && ok || tt.want != "" && (!ok || got.String() != tt.want) {
			t.Errorf("ownAddr(%q) = %v, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestPassivePerIP(t *testing.T) {
	for _, tt := range []struct {
		in    string
		ports nat.PortRange
		want  int
	}{
		{"auto", nat.PortRange{Low: 50000, High: 50019}, 10},
		{"", nat.PortRange{Low: 50000, High: 50019}, 10},
		{"AUTO", nat.PortRange{Low: 50000, High: 50999}, 500},
		{"auto", nat.PortRange{Low: 50000, High: 50002}, 1},
		{"auto", nat.PortRange{Low: 50000, High: 50000}, 1},
		{"0", nat.PortRange{Low: 50000, High: 50019}, 0},
		{" 12 ", nat.PortRange{Low: 50000, High: 50019}, 12},
	} {
		var p problems
		if got := passivePerIP(&p, tt.in, tt.ports); got != tt.want || p.err() != nil {
			t.Errorf("passivePerIP(%q, %v) = %d, %v; want %d", tt.in, tt.ports, got, p.err(), tt.want)
		}
	}
}
