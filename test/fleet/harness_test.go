package fleet

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/internal/testproc"
	"github.com/ftpsgate/ftpsgate/internal/testvsftpd"
)

// envInterop is the switch that turns the tests on (test/interop's).
const envInterop = "FTPSGATE_INTEROP"

// workDir holds what one run shares: the gateway binary, big files.
var workDir string

func TestMain(m *testing.M) {
	if os.Getenv(envInterop) != "1" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ftpsgate-fleet-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireInterop skips t unless the switch is on; with it on, t needs root.
func requireInterop(t testing.TB) {
	t.Helper()
	if os.Getenv(envInterop) != "1" {
		t.Skipf("fleet test with real haproxy and vsftpd: set %s=1 to run it", envInterop)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 needs root: vsftpd logs in a local user the test creates", envInterop)
	}
}

// requireProgram is the path of a program; missing, it fails t.
func requireProgram(t testing.TB, name string, dirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not found (apt-get install %s): with %s=1 a missing program is a failure", name, name, envInterop)
	return ""
}

func fileExists(p string) bool { st, err := os.Stat(p); return err == nil && !st.IsDir() }

// buildGateway compiles the gateway once per run.
var buildGateway = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(workDir, "ftpsgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ftpsgate/ftpsgate/cmd/ftpsgate").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Options vary the fleet.
type Options struct {
	Replicas int                // 1-3; 0: 3
	Extra    string             // YAML appended to every replica's configuration (e.g. fleet:)
	ExtraFor func(i int) string // YAML appended to replica i's
	Env      []string           // more environment for every gateway
	Timeouts map[string]string  // timeouts.* overrides (data_accept is 10s unless set)
	Limits   map[string]any     // limits.* settings
	Bans     map[string]any     // bans.* settings
	LogLevel string             // "": debug
	Ports    [2]int             // the range the port block is taken from; zero: 54500-54999
}

// Fleet is a running fleet behind HAProxy.
type Fleet struct {
	Addr           string // the balancer's explicit FTPS control address: 127.0.0.1:port
	PasvLo, PasvHi int    // the fleet's passive.ports (what the balancer maps)
	Replicas       []*Replica
	Backend        *testvsftpd.Server
	User           testvsftpd.Account
	CAFile         string // verifies the gateways' certificate (for 127.0.0.1)
	Token          string // the admin API token of every replica
	TokenFile      string
	HAProxy        *testproc.Process
	HAProxyConfig  string // the generated haproxy.cfg
	Bin            string // the gateway binary
	Dir            string
	opts           Options
}

// Replica is one gateway process of the fleet.
type Replica struct {
	Index          int
	Host           string // 127.0.0.(2+Index): its listeners, admin API and passive ports
	ControlAddr    string
	AdminAddr      string
	ConfigPath     string
	PasvLo, PasvHi int // its slice
	Proc           *testproc.Process
	logPath        string
	f              *Fleet
}

// Port block layout (see doc.go).
const (
	portFirst     = 54500
	portLast      = 54999
	blockSize     = 100
	offGwPassive  = 0 // 20 a replica
	perReplica    = 20
	offVsPassive  = 60 // 20
	offControl    = 90
	offAdmin      = 92
	offVsftpd     = 95
	maxReplicas   = 3
	replicaHostIP = 2 // replica i on 127.0.0.(2+i)
)

// portBlock returns the first block of 54500-54999 whose ports are free on
// every address the fleet uses.
func portBlock(t testing.TB, replicas int, within [2]int) int {
	t.Helper()
	first, last := portFirst, portLast
	if within[0] != 0 {
		first, last = within[0], within[1]
	}
	hosts := []string{"127.0.0.1"}
	for i := 0; i < replicas; i++ {
		hosts = append(hosts, replicaHost(i))
	}
	// Ephemeral ports of finished connections (TIME-WAIT, a minute) fall
	// in the range too: scan again until a block is free.
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		for base := first; base+blockSize-1 <= last; base += blockSize {
			if blockFree(base, hosts) {
				return base
			}
		}
	}
	t.Fatalf("no free block of %d ports in %d-%d", blockSize, first, last)
	return 0
}

func blockFree(base int, hosts []string) bool {
	for _, h := range hosts {
		for p := base; p < base+blockSize; p++ {
			ln, err := net.Listen("tcp4", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				return false
			}
			ln.Close()
		}
	}
	return true
}

func replicaHost(i int) string { return fmt.Sprintf("127.0.0.%d", replicaHostIP+i) }

// Start runs vsftpd, the replicas and HAProxy, and waits until the
// balancer reports every replica up.
func Start(ctx context.Context, t testing.TB, o Options) *Fleet {
	t.Helper()
	requireInterop(t)
	if o.Replicas == 0 {
		o.Replicas = maxReplicas
	}
	if o.Replicas < 1 || o.Replicas > maxReplicas {
		t.Fatalf("fleet: %d replicas asked, 1-%d", o.Replicas, maxReplicas)
	}
	haproxy := requireProgram(t, "haproxy", "/usr/sbin")
	bin, err := buildGateway()
	if err != nil {
		t.Fatal(err)
	}
	base := portBlock(t, o.Replicas, o.Ports)
	f := &Fleet{Bin: bin, Dir: t.TempDir(), opts: o,
		Addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(base+offControl)),
		PasvLo: base + offGwPassive, PasvHi: base + offGwPassive + o.Replicas*perReplica - 1}
	f.Backend = testvsftpd.Start(ctx, t, testvsftpd.Options{Port: base + offVsftpd, PasvLo: base + offVsPassive, PasvHi: base + offVsPassive + 19})
	f.User = f.Backend.User
	pki, err := testpki.WriteServer(f.Dir, "ftpsgate fleet test CA")
	if err != nil {
		t.Fatal(err)
	}
	f.CAFile = pki.CAFile
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	f.Token = hex.EncodeToString(rnd[:])
	f.TokenFile = filepath.Join(f.Dir, "admin.token")
	if err := os.WriteFile(f.TokenFile, []byte(f.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := 0; i < o.Replicas; i++ {
		r := &Replica{Index: i, Host: replicaHost(i), f: f,
			ControlAddr: net.JoinHostPort(replicaHost(i), strconv.Itoa(base+offControl)),
			AdminAddr:   net.JoinHostPort(replicaHost(i), strconv.Itoa(base+offAdmin)),
			PasvLo:      f.PasvLo + i*perReplica, PasvHi: f.PasvLo + (i+1)*perReplica - 1,
			ConfigPath: filepath.Join(f.Dir, fmt.Sprintf("gw%d.yaml", i)),
			logPath:    filepath.Join(f.Dir, fmt.Sprintf("gw%d.log", i)),
		}
		if err := os.WriteFile(r.ConfigPath, []byte(f.replicaYAML(r, pki)), 0o600); err != nil {
			t.Fatal(err)
		}
		f.Replicas = append(f.Replicas, r)
		files = append(files, r.ConfigPath)
	}
	// The fleet check and the balancer's configuration, as an operator would.
	if out, err := f.command(ctx, append([]string{"validate", "--fleet"}, files...)...); err != nil {
		t.Fatalf("ftpsgate validate --fleet: %v\n%s", err, out)
	}
	cfg, err := f.command(ctx, append([]string{"haproxy", "--bind", "127.0.0.1"}, files...)...)
	if err != nil {
		t.Fatalf("ftpsgate haproxy: %v\n%s", err, cfg)
	}
	f.HAProxyConfig = filepath.Join(f.Dir, "haproxy.cfg")
	if err := os.WriteFile(f.HAProxyConfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, haproxy, "-c", "-f", f.HAProxyConfig).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c rejects the generated configuration: %v\n%s\n%s", err, out, cfg)
	}
	for _, r := range f.Replicas {
		r.Start(ctx, t)
	}
	f.HAProxy = testproc.Start(t, "haproxy", filepath.Join(f.Dir, "haproxy.log"), nil, haproxy, "-db", "-f", f.HAProxyConfig)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	testproc.WaitPort(wctx, t, f.Addr, f.HAProxy)
	f.WaitBalanced(wctx, t)
	return f
}

// command runs the gateway binary (not a server) and returns its output.
func (f *Fleet) command(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, f.Bin, args...)
	cmd.Env = append(os.Environ(), f.opts.Env...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out) + string(ee.Stderr), err
	}
	return string(out), err
}

// replicaYAML is replica r's configuration.
func (f *Fleet) replicaYAML(r *Replica, pki *testpki.Files) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("listeners:")
	w("  - name: explicit")
	w("    address: %s", r.ControlAddr)
	w("    tls: explicit")
	w("    proxy_protocol: {enabled: true, trusted: [127.0.0.1/32]}")
	w("tls: {cert_file: %q, key_file: %q}", pki.ChainFile, pki.KeyFile)
	w("backend: {address: %s, tls: explicit, ca_file: %q}", f.Backend.Addr, f.Backend.CAFile)
	w("passive: {public_host: 127.0.0.1, ports: %d-%d, replicas: %d, replica_index: \"%d\"}", f.PasvLo, f.PasvHi, f.opts.Replicas, r.Index)
	w("admin: {address: %s, token_file: %q}", r.AdminAddr, f.TokenFile)
	timeouts := map[string]string{"data_accept": "10s"}
	for k, v := range f.opts.Timeouts {
		timeouts[k] = v
	}
	w("timeouts:")
	for k, v := range timeouts {
		w("  %s: %s", k, v)
	}
	for _, sec := range []struct {
		name string
		m    map[string]any
	}{{"limits", f.opts.Limits}, {"bans", f.opts.Bans}} {
		if len(sec.m) == 0 {
			continue
		}
		w("%s:", sec.name)
		for k, v := range sec.m {
			j, _ := json.Marshal(v)
			w("  %s: %s", k, j)
		}
	}
	level := f.opts.LogLevel
	if level == "" {
		level = "debug"
	}
	w("log: {level: %s, format: json}", level)
	b.WriteString(f.opts.Extra)
	if f.opts.ExtraFor != nil {
		b.WriteString(f.opts.ExtraFor(r.Index))
	}
	return b.String()
}

// Start runs the replica's gateway (again, after Kill) and waits until its
// listener and admin API accept.
func (r *Replica) Start(ctx context.Context, t testing.TB) {
	t.Helper()
	r.Proc = testproc.Start(t, fmt.Sprintf("ftpsgate gw%d", r.Index), r.logPath, r.f.opts.Env, r.f.Bin, "run", "--config", r.ConfigPath)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	testproc.WaitPort(wctx, t, r.ControlAddr, r.Proc)
	testproc.WaitPort(wctx, t, r.AdminAddr, r.Proc)
}

// Kill kills the replica's process (SIGKILL): a crashed replica.
func (r *Replica) Kill() error { return r.Proc.Kill() }

// Admin is a client of the replica's admin API.
func (r *Replica) Admin(t testing.TB) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(r.AdminAddr, r.f.Token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Log is everything the replica logged (all its runs).
func (r *Replica) Log() string { return r.Proc.Log() }

// LogLines are the replica's JSON log lines whose message is msg (all of
// them for "").
func (r *Replica) LogLines(msg string) []map[string]any {
	fh, err := os.Open(r.logPath)
	if err != nil {
		return nil
	}
	defer fh.Close()
	var out []map[string]any
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if msg == "" || m["message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// WaitBalanced waits until HAProxy's health checks have every running
// replica up: a control connection through the balancer then reaches any.
func (f *Fleet) WaitBalanced(ctx context.Context, t testing.TB) {
	t.Helper()
	// HAProxy marks servers up after its first successful check (the
	// default inter 2s, rise 2 apply from a down state only; servers start
	// up). Wait for each replica's /readyz to answer, then for one check
	// interval so that HAProxy has seen it.
	for _, r := range f.Replicas {
		if r.Proc.Exited() {
			continue
		}
		for {
			err := r.Admin(t).Health(ctx)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("gw%d's admin API does not answer: %v\n%s", r.Index, err, r.Proc.LogTail())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// Diagnostics is the balancer's configuration and log and every replica's
// log tail, for failure messages.
func (f *Fleet) Diagnostics() string {
	cfg, _ := os.ReadFile(f.HAProxyConfig)
	s := testproc.Tail("haproxy.cfg", string(cfg), 6000) + "\n" + f.HAProxy.LogTail()
	for _, r := range f.Replicas {
		s += "\n" + r.Proc.LogTail()
	}
	return s + "\n" + f.Backend.Diagnostics()
}
