package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatewayPackage is what `go build` compiles into the binary under test.
const gatewayPackage = "github.com/ftpsgate/ftpsgate/cmd/ftpsgate"

// buildGateway compiles the gateway once per test run.
var buildGateway = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is not in PATH: %w", err)
	}
	bin := filepath.Join(workDir, "ftpsgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, gatewayPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build -o %s %s: %v\n%s", bin, gatewayPackage, err, out)
	}
	return bin, nil
})

// gatewayBinary returns the path of the built gateway or fails t.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildGateway()
	if err != nil {
		t.Fatalf("building the gateway: %v", err)
	}
	return bin
}

// gatewayConfig is what a test varies in the gateway's YAML configuration.
type gatewayConfig struct {
	ExplicitAddr  string // "" for no explicit listener
	ImplicitAddr  string // "" for no implicit listener
	BackendAddr   string
	BackendTLS    tlsMode
	BackendCA     string // backend.ca_file
	PublicHost    string
	PassiveLo     int
	PassiveHi     int
	Connect       time.Duration // timeouts.connect; 0: 10s
	ShutdownGrace time.Duration // timeouts.shutdown_grace; 0: 30s
	MinTLS        string        // tls.min_version; "": "1.2"
	Active        bool          // active.enabled
	SessionReuse  string        // tls.data_session_reuse; "": user (the default)
	DataAccept    time.Duration // timeouts.data_accept; 0: 10s
	Extra         string        // more top-level sections, appended as they are (e.g. auth:)
}

// dataAccept is 10 s unless set (the gateway's default is 30 s): a refused
// data connection keeps the port open that long for the rightful one, and
// the known-limitation cells (clients that do not resume the TLS session)
// each wait for it before their 431.
func (c gatewayConfig) dataAccept() time.Duration {
	if c.DataAccept == 0 {
		return 10 * time.Second
	}
	return c.DataAccept
}

func (c gatewayConfig) sessionReuse() string {
	if c.SessionReuse == "" {
		return "user"
	}
	return c.SessionReuse
}

func (c gatewayConfig) minTLS() string {
	if c.MinTLS == "" {
		return "1.2"
	}
	return c.MinTLS
}

func (c gatewayConfig) connect() time.Duration {
	if c.Connect == 0 {
		return 10 * time.Second
	}
	return c.Connect
}

func (c gatewayConfig) shutdownGrace() time.Duration {
	if c.ShutdownGrace == 0 {
		return 30 * time.Second
	}
	return c.ShutdownGrace
}

// yamlDuration writes a duration the way the documented examples do (10s, 5m).
func yamlDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return d.String()
	}
}

// YAML renders the configuration in the documented format.
func (c gatewayConfig) YAML() string {
	var b strings.Builder
	b.WriteString("listeners:\n")
	if c.ExplicitAddr != "" {
		fmt.Fprintf(&b, "  - name: explicit\n    address: %s\n    tls: explicit\n    require_tls: true\n", c.ExplicitAddr)
	}
	if c.ImplicitAddr != "" {
		fmt.Fprintf(&b, "  - name: implicit\n    address: %s\n    tls: implicit\n", c.ImplicitAddr)
	}
	fmt.Fprintf(&b, `tls:
  cert_file: ""
  key_file: ""
  min_version: "%s"
  require_protected_data: true
  data_session_reuse: %s
backend:
  address: %s
  tls: %s
  ca_file: %q
  server_name: ""
  insecure_skip_verify: false
passive:
  public_host: %s
  ports: %d-%d
active:
  enabled: %t
timeouts:
  idle: 5m
  connect: %s
  handshake: 10s
  data_accept: %s
  shutdown_grace: %s
log:
  level: debug
  format: json
`, c.minTLS(), c.sessionReuse(), c.BackendAddr, c.BackendTLS, c.BackendCA, c.PublicHost, c.PassiveLo, c.PassiveHi, c.Active,
		yamlDuration(c.connect()), yamlDuration(c.dataAccept()), yamlDuration(c.shutdownGrace()))
	b.WriteString(c.Extra)
	return b.String()
}

// newGatewayConfig fills the listeners with free loopback ports (both kinds),
// the passive range with a fresh block and public_host with 127.0.0.1.
func newGatewayConfig(t *testing.T, backendAddr string, backendTLS tlsMode, backendCA string) gatewayConfig {
	t.Helper()
	lo, hi := portRange(t, 20)
	return gatewayConfig{
		ExplicitAddr: loopbackAddr(freePort(t)),
		ImplicitAddr: loopbackAddr(freePort(t)),
		BackendAddr:  backendAddr,
		BackendTLS:   backendTLS,
		BackendCA:    backendCA,
		PublicHost:   "127.0.0.1",
		PassiveLo:    lo,
		PassiveHi:    hi,
	}
}

func loopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// gateway is a running ftpsgate process.
type gateway struct {
	Config     gatewayConfig
	ConfigPath string
	proc       *process
}

// writeConfig writes cfg as YAML into dir and returns the file's path.
func writeConfig(t *testing.T, dir string, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "ftpsgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startGateway runs `ftpsgate run --config FILE` and waits until every
// listener accepts connections.
func startGateway(ctx context.Context, t *testing.T, cfg gatewayConfig) *gateway {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	g := &gateway{Config: cfg, ConfigPath: writeConfig(t, dir, cfg.YAML())}
	g.proc = startProcess(t, "ftpsgate", filepath.Join(dir, "ftpsgate.log"), bin, "run", "--config", g.ConfigPath)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, addr := range []string{cfg.ExplicitAddr, cfg.ImplicitAddr} {
		if addr != "" {
			waitForPort(wctx, t, addr, g.proc)
		}
	}
	return g
}

// client returns a curl client for one of the gateway's listeners.
func (g *gateway) client(front tlsMode, pasv bool, acct ftpAccount) curlClient {
	addr := g.Config.ExplicitAddr
	if front == tlsImplicit {
		addr = g.Config.ImplicitAddr
	}
	return curlClient{Addr: addr, TLS: front, PASV: pasv, User: acct.Name, Password: acct.Password}
}

// diagnostics is the gateway's configuration and log, for failure messages.
func (g *gateway) diagnostics() string {
	return tail("ftpsgate config "+g.ConfigPath, g.Config.YAML(), 4000) + "\n" + g.proc.LogTail()
}

// assertLogOmits fails t if the gateway's log contains any of the secrets.
func (g *gateway) assertLogOmits(t *testing.T, secrets ...string) {
	t.Helper()
	log := g.proc.Log()
	for _, s := range secrets {
		if i := strings.Index(log, s); i >= 0 {
			lo, hi := max(0, i-300), min(len(log), i+len(s)+100)
			t.Errorf("the gateway's log (%s) contains the password %q:\n...%s...", g.proc.LogPath, s, log[lo:hi])
		}
	}
}
