package main

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/nat"
)

var update = flag.Bool("update", false, "rewrite deploy/haproxy/haproxy.cfg from deploy/haproxy/gw*.yaml")

// replicaConfig is goodConfig with a fleet's passive section.
func replicaConfig(passive string) string {
	return strings.Replace(goodConfig, "  ports: 50000-50019\n", passive, 1)
}

func TestReplicaSlice(t *testing.T) {
	for _, c := range []struct {
		name, passive string
		host          string
		want          nat.PortRange
	}{
		{"one replica", "  ports: 50000-50019\n", "", nat.PortRange{Low: 50000, High: 50019}},
		{"number", "  ports: 50000-50299\n  replicas: 3\n  replica_index: \"1\"\n", "", nat.PortRange{Low: 50100, High: 50199}},
		{"hostname", "  ports: 50000-50299\n  replicas: 3\n  replica_index: hostname\n", "ftpsgate-2", nat.PortRange{Low: 50200, High: 50299}},
		{"hostname with domain", "  ports: 50000-50299\n  replicas: 3\n  replica_index: Hostname\n", "gw-0.gw.ns.svc", nat.PortRange{Low: 50000, High: 50099}},
	} {
		t.Run(c.name, func(t *testing.T) {
			old := hostname
			hostname = func() (string, error) { return c.host, nil }
			defer func() { hostname = old }()
			cfg, err := loadFile(writeConfig(t, replicaConfig(c.passive)))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.proxy.Passive.Ports != c.want || cfg.fleet.Ports != c.want {
				t.Errorf("passive ports %v (slot %+v), want %v", cfg.proxy.Passive.Ports, cfg.fleet, c.want)
			}
			// limits.max_passive_per_ip auto: half of the replica's slice.
			if got := cfg.proxy.Limits.MaxPassivePerIP; got != c.want.Size()/2 {
				t.Errorf("max_passive_per_ip %d, want %d", got, c.want.Size()/2)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("FTPSGATE_PASSIVE_REPLICA_INDEX", "2")
		cfg, err := loadFile(writeConfig(t, replicaConfig("  ports: 50000-50299\n  replicas: 3\n  replica_index: \"0\"\n")))
		if err != nil || cfg.fleet.Ports != (nat.PortRange{Low: 50200, High: 50299}) {
			t.Fatalf("FTPSGATE_PASSIVE_REPLICA_INDEX=2: %v %+v", err, cfg)
		}
	})
}

func TestReplicaSliceProblems(t *testing.T) {
	old := hostname
	defer func() { hostname = old }()
	for _, c := range []struct {
		passive, host, key, text string
	}{
		{"  ports: 50000-50299\n  replicas: 3\n", "", "passive.replica_index", "must be set"},
		{"  ports: 50000-50299\n  replicas: 3\n  replica_index: \"3\"\n", "", "passive.replica_index", "outside 0-2"},
		{"  ports: 50000-50299\n  replicas: 3\n  replica_index: two\n", "", "passive.replica_index", "neither a number"},
		{"  ports: 50000-50298\n  replicas: 3\n  replica_index: \"0\"\n", "", "passive.replicas", "does not split evenly"},
		{"  ports: 50000-50299\n  replicas: 0\n", "", "passive.replicas", "at least 1"},
		{"  ports: 50000-50299\n  replicas: 3\n  replica_index: hostname\n", "gateway", "passive.replica_index", "no ordinal"},
	} {
		hostname = func() (string, error) { return c.host, nil }
		_, err := loadFile(writeConfig(t, replicaConfig(c.passive)))
		if err == nil || !strings.Contains(err.Error(), c.key+": ") || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%q: error %v, want %s: ...%s...", c.passive, err, c.key, c.text)
		}
	}
	hostname = func() (string, error) { return "", errors.New("no host name") }
	if _, err := loadFile(writeConfig(t, replicaConfig("  ports: 50000-50299\n  replicas: 3\n  replica_index: hostname\n"))); err == nil {
		t.Error("hostname without a host name: no error")
	}
}

// fleetConfig is replica i of n on its own host, behind 10.0.0.2.
func fleetConfig(i, n int, ports, publicHost string) string {
	host := "10.0.0.1" + string(rune('0'+i))
	index := i
	if n == 1 {
		index = 0 // a whole range of its own
	}
	return strings.NewReplacer("HOST", host, "PORTS", ports, "N", string(rune('0'+n)), "I", string(rune('0'+index)), "PUBLIC", publicHost).Replace(`
listeners:
  - name: explicit
    address: HOST:21
    tls: explicit
    proxy_protocol: {enabled: true, trusted: [10.0.0.2]}
backend: {address: 10.0.9.9:21}
passive: {public_host: "PUBLIC", ports: PORTS, replicas: N, replica_index: "I"}
`)
}

func TestValidateFleet(t *testing.T) {
	files := func(cfgs ...string) []string {
		var out []string
		for _, c := range cfgs {
			out = append(out, writeConfig(t, c))
		}
		return out
	}
	good := files(fleetConfig(0, 3, "50000-50299", "203.0.113.10"), fleetConfig(1, 3, "50000-50299", "203.0.113.10"), fleetConfig(2, 3, "50000-50299", "203.0.113.10"))
	code, out, errOut := runCLI(append([]string{"validate", "--fleet"}, good...)...)
	if code != 0 || !strings.Contains(out, "fleet ok: 3 replicas") || !strings.Contains(out, "replica 2 of 3, passive 50200-50299") {
		t.Fatalf("good fleet: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(append([]string{"validate", "--fleet", "--balancer-ports", "50000-50199"}, good...)...); code != 1 || !strings.Contains(errOut, "outside what the balancer maps (50000-50199)") {
		t.Errorf("slice outside --balancer-ports: %d %q", code, errOut)
	}
	for _, c := range []struct {
		name  string
		files []string
		want  []string
	}{
		{"same index twice", files(fleetConfig(0, 2, "50000-50199", "203.0.113.10"), fleetConfig(0, 2, "50000-50199", "203.0.113.10")),
			[]string{"passive ports overlap", "no file is replica 1 (ports 50100-50199 would lead nowhere)"}},
		{"own ranges overlapping", files(fleetConfig(0, 1, "50000-50100", "203.0.113.10"), fleetConfig(1, 1, "50100-50199", "203.0.113.10")),
			[]string{"passive ports overlap"}},
		{"public hosts differ", files(fleetConfig(0, 2, "50000-50199", "203.0.113.10"), fleetConfig(1, 2, "50000-50199", "203.0.113.11")),
			[]string{`passive.public_host "203.0.113.11" differs`}},
		{"no public host", files(fleetConfig(0, 1, "50000-50099", ""), fleetConfig(1, 1, "50100-50199", "")),
			[]string{"passive.public_host is not set"}},
	} {
		code, _, errOut := runCLI(append([]string{"validate", "--fleet"}, c.files...)...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1 (%q)", c.name, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: %q lacks %q", c.name, errOut, w)
			}
		}
	}
	// One shared file (a StatefulSet's ConfigMap) stands for every replica.
	shared := files(strings.Replace(fleetConfig(0, 3, "50000-50299", "203.0.113.10"), `replica_index: "0"`, "replica_index: hostname", 1))
	if code, out, errOut := runCLI(append([]string{"validate", "--fleet"}, shared...)...); code != 0 || strings.Count(out, "replica ") != 3 {
		t.Errorf("shared file: %d %q %q", code, out, errOut)
	}
	// --config counts as the first file; each file's weakened settings are
	// named once.
	code, out, errOut = runCLI("validate", "--fleet", "--config", good[0], good[1], good[2])
	if code != 0 || !strings.Contains(out, "fleet ok: 3 replicas") || strings.Count(out, "warning: ") != 3 || !strings.Contains(out, "warning: "+good[1]+": tls.cert_file") {
		t.Errorf("--fleet --config: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI("validate", "--config", good[0], good[1]); code != 2 || !strings.Contains(errOut, "need --fleet") {
		t.Errorf("files without --fleet: %d %q", code, errOut)
	}
}

// deployEnv points the example files' secrets at files that exist.
func deployEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	f, err := testpki.WriteServer(dir, "deploy test CA")
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FTPSGATE_TLS_CERT_FILE", f.ChainFile)
	t.Setenv("FTPSGATE_TLS_KEY_FILE", f.KeyFile)
	t.Setenv("FTPSGATE_BACKEND_CA_FILE", f.CAFile)
	t.Setenv("FTPSGATE_ADMIN_TOKEN_FILE", token)
	pw := filepath.Join(dir, "redis-password")
	if err := os.WriteFile(pw, []byte("not-a-real-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FTPSGATE_FLEET_REDIS_PASSWORD_FILE", pw)
}

// The shipped haproxy.cfg is what `ftpsgate haproxy` makes of the shipped
// replica files (go test -run TestShippedHAProxy -update rewrites it), and
// HAProxy accepts it.
func TestShippedHAProxy(t *testing.T) {
	deployEnv(t)
	t.Chdir(filepath.Join("..", ".."))
	args := []string{"haproxy", "--bind", "203.0.113.10", "deploy/haproxy/gw0.yaml", "deploy/haproxy/gw1.yaml", "deploy/haproxy/gw2.yaml"}
	code, out, errOut := runCLI(args...)
	if code != 0 {
		t.Fatalf("ftpsgate haproxy: %d %s", code, errOut)
	}
	const shipped = "deploy/haproxy/haproxy.cfg"
	if *update {
		if err := os.WriteFile(shipped, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != out {
		t.Errorf("%s is not what `ftpsgate %s` prints: regenerate it (go test ./cmd/ftpsgate -run TestShippedHAProxy -update)", shipped, strings.Join(args, " "))
	}
	for _, want := range []string{
		"bind 203.0.113.10:21\n", "bind 203.0.113.10:990\n",
		"server gw1 10.0.1.11:21 send-proxy-v2 check addr 10.0.1.11 port 9090\n",
		"bind 203.0.113.10:50100-50199\n    default_backend passive_gw1\nbackend passive_gw1\n",
		"server gw1 10.0.1.11 send-proxy-v2\n", "balance leastconn", "http-check send meth GET uri /readyz",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
	// Each passive backend has one server: its replica.
	for _, part := range strings.Split(out, "\nbackend passive_gw")[1:] {
		if n := strings.Count(strings.Split(part, "\n\n")[0], "    server "); n != 1 {
			t.Errorf("passive backend with %d servers:\n%s", n, part)
		}
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/haproxy"); err != nil {
			t.Skip("haproxy not installed: the configuration's syntax is not checked (apt-get install haproxy)")
		}
	}
	// -c resolves user haproxy: Debian's package creates it.
	if out, err := exec.Command(bin, "-c", "-f", shipped).CombinedOutput(); err != nil {
		t.Errorf("haproxy -c -f %s: %v\n%s", shipped, err, out)
	}
}

func TestHAProxyCommand(t *testing.T) {
	a := writeConfig(t, fleetConfig(0, 2, "50000-50199", "203.0.113.10"))
	b := writeConfig(t, fleetConfig(1, 2, "50000-50199", "203.0.113.10"))
	code, out, errOut := runCLI("haproxy", "--user", "", a, b)
	if code != 0 {
		t.Fatalf("haproxy: %d %s", code, errOut)
	}
	mustContain(t, "haproxy.cfg", out, "bind :21\n", "server gw0 10.0.0.10:21 send-proxy-v2 check check-send-proxy\n",
		"bind :50100-50199\n", "server gw1 10.0.0.11 send-proxy-v2\n")
	if strings.Contains(out, "\n    user ") {
		t.Error("--user \"\": a user line")
	}
	// A fleet that does not pass validate --fleet gets no configuration.
	if code, out, errOut := runCLI("haproxy", a, a); code != 1 || out != "" || !strings.Contains(errOut, "overlap") {
		t.Errorf("overlapping fleet: %d %q %q", code, out, errOut)
	}
	// Listeners on every address: the balancer needs --servers.
	shared := writeConfig(t, strings.Replace(strings.Replace(fleetConfig(0, 2, "50000-50199", "203.0.113.10"), "10.0.0.10:21", "0.0.0.0:21", 1), `replica_index: "0"`, "replica_index: hostname", 1))
	if code, _, errOut := runCLI("haproxy", shared); code != 1 || !strings.Contains(errOut, "--servers") {
		t.Errorf("0.0.0.0 without --servers: %d %q", code, errOut)
	}
	if code, out, errOut := runCLI("haproxy", "--servers", "gw-0.gw,gw-1.gw", shared); code != 0 || !strings.Contains(out, "server gw1 gw-1.gw:21 ") {
		t.Errorf("--servers: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI("haproxy", "--servers", "one", shared); code != 1 || !strings.Contains(errOut, "names 1 addresses for 2 replicas") {
		t.Errorf("--servers count: %d %q", code, errOut)
	}
}

// The balancer's health check goes where it can reach the admin API.
func TestHAProxyHealthCheck(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ admin, want string }{
		{"0.0.0.0:9090", "server gw0 10.0.0.10:21 send-proxy-v2 check addr 10.0.0.10 port 9090\n"},
		{"10.0.5.10:9090", "server gw0 10.0.0.10:21 send-proxy-v2 check addr 10.0.5.10 port 9090\n"},
		{"127.0.0.1:9090", "server gw0 10.0.0.10:21 send-proxy-v2 check check-send-proxy\n"},
		{"unix:/run/ftpsgate.sock", "server gw0 10.0.0.10:21 send-proxy-v2 check check-send-proxy\n"},
	} {
		admin := "admin: {address: " + c.admin + ", token_file: " + token + "}\n"
		if strings.HasPrefix(c.admin, "unix:") {
			admin = "admin: {address: " + c.admin + "}\n"
		}
		code, out, errOut := runCLI("haproxy", writeConfig(t, fleetConfig(0, 1, "50000-50099", "203.0.113.10")+admin))
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("admin %s: %d %q, want %q", c.admin, code, errOut, c.want)
		}
		if readyz := strings.Contains(c.want, "port 9090"); readyz != strings.Contains(out, "option httpchk") {
			t.Errorf("admin %s: option httpchk %v", c.admin, !readyz)
		}
	}
}

// The Kubernetes overlays' configurations are valid, and the fleet's
// per-replica passive Services are what `ftpsgate firewall` makes of its
// configuration (go test -run TestShippedKubernetes -update rewrites them).
func TestShippedKubernetes(t *testing.T) {
	deployEnv(t)
	t.Chdir(filepath.Join("..", ".."))
	if code, out, errOut := runCLI("validate", "--config", "deploy/kubernetes/overlays/sidecar/ftpsgate.yaml"); code != 0 {
		t.Errorf("sidecar: %d %s %s", code, out, errOut)
	}
	const cfg = "deploy/kubernetes/overlays/fleet/ftpsgate.yaml"
	if code, out, errOut := runCLI("validate", "--fleet", cfg); code != 0 || !strings.Contains(out, "fleet ok: 3 replicas") {
		t.Errorf("fleet: %d %s %s", code, out, errOut)
	}
	args := []string{"firewall", "--fleet", "--format", "k8s-service", "--control-service=false", cfg}
	code, out, errOut := runCLI(args...)
	if code != 0 {
		t.Fatalf("ftpsgate %s: %d %s", strings.Join(args, " "), code, errOut)
	}
	const shipped = "deploy/kubernetes/overlays/fleet/services-passive.yaml"
	if *update {
		if err := os.WriteFile(shipped, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(shipped); err != nil || string(b) != out {
		t.Errorf("%s is not what `ftpsgate %s` prints (%v): regenerate it (go test ./cmd/ftpsgate -run TestShippedKubernetes -update)", shipped, strings.Join(args, " "), err)
	}
}
