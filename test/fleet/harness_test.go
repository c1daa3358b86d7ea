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
	Replicas int                  // 1-3; 0: 3
	Extra    string               // YAML appended to every replica's configuration (e.g. fleet:)
	ExtraFor func(i int) string   // YAML appended to replica i's
	Env      []string             // more environment for every gateway
	EnvFor   func(i int) []string // more environment for replica i
	Timeouts map[string]string    // timeouts.* overrides (data_accept is 10s unless set)
	Limits   map[string]any       // limits.* settings
	Bans     map[string]any       // bans.* settings
	LogLevel string               // "": debug
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
	statsSocket    string
	base           int            // the port block
	pki            *testpki.Files // the gateways' certificate
	backendPKI     *testpki.Files // vsftpd's
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
	blockSize     = 50
	offGwPassive  = 0 // 10 a replica
	perReplica    = 10
	offVsPassive  = 30 // vsftpd's 10
	vsPassive     = 10
	offControl    = 45
	offAdmin      = 46
	offVsftpd     = 47
	maxReplicas   = 3
	replicaHostIP = 2 // replica i on 127.0.0.(2+i)
)

// portBlock returns the first block of 54500-54999 not tried yet whose
// ports the fleet uses are free on the addresses it uses them on. The
// range lies inside Linux's ephemeral ports (32768-60999; .ci/run reserves
// it with net.ipv4.ip_local_reserved_ports), so on a busy machine a client
// connection may hold one for a while: it tries again for up to 60 s.
func portBlock(t testing.TB, replicas int, tried map[int]bool) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var busy []string
		for base := portFirst; base+blockSize-1 <= portLast; base += blockSize {
			if tried[base] {
				continue
			}
			addr := blockBusy(base, replicas)
			if addr == "" {
				return base
			}
			busy = append(busy, addr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no block of %d ports in %d-%d with the fleet's ports free (busy: %v)", blockSize, portFirst, portLast, busy)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// blockBusy is the first address the fleet would use in the block at base
// that cannot be bound now, or "". The balancer binds 127.0.0.1 (control
// and every passive port), vsftpd 127.0.0.1 (its port and passive range),
// replica i 127.0.0.(2+i) (control, admin, its passive slice).
func blockBusy(base, replicas int) string {
	busy := func(host string, lo, hi int) string {
		for p := lo; p <= hi; p++ {
			addr := net.JoinHostPort(host, strconv.Itoa(p))
			ln, err := net.Listen("tcp4", addr)
			if err != nil {
				return addr
			}
			ln.Close()
		}
		return ""
	}
	checks := [][3]any{
		{"127.0.0.1", base + offGwPassive, base + offGwPassive + replicas*perReplica - 1},
		{"127.0.0.1", base + offVsPassive, base + offVsPassive + vsPassive - 1},
		{"127.0.0.1", base + offControl, base + offControl},
		{"127.0.0.1", base + offVsftpd, base + offVsftpd},
	}
	for i := 0; i < replicas; i++ {
		lo := base + offGwPassive + i*perReplica
		checks = append(checks, [3]any{replicaHost(i), lo, lo + perReplica - 1},
			[3]any{replicaHost(i), base + offControl, base + offControl}, [3]any{replicaHost(i), base + offAdmin, base + offAdmin})
	}
	for _, c := range checks {
		if addr := busy(c[0].(string), c[1].(int), c[2].(int)); addr != "" {
			return addr
		}
	}
	return ""
}

func replicaHost(i int) string { return fmt.Sprintf("127.0.0.%d", replicaHostIP+i) }

// Start runs HAProxy, vsftpd and the replicas, and waits until the
// balancer reports every replica up. HAProxy starts first: it binds the
// most ports (on 127.0.0.1, where client ports are taken from the same
// range), and when one is taken after all it is tried again on another
// block before anything else runs.
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
	f := &Fleet{Bin: bin, Dir: t.TempDir(), opts: o}
	if f.pki, err = testpki.WriteServer(f.Dir, "ftpsgate fleet test CA"); err != nil {
		t.Fatal(err)
	}
	f.CAFile = f.pki.CAFile
	vsDir := filepath.Join(f.Dir, "vsftpd-pki")
	if err := os.Mkdir(vsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if f.backendPKI, err = testpki.WriteServer(vsDir, "ftpsgate vsftpd test CA"); err != nil {
		t.Fatal(err)
	}
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	f.Token = hex.EncodeToString(rnd[:])
	f.TokenFile = filepath.Join(f.Dir, "admin.token")
	if err := os.WriteFile(f.TokenFile, []byte(f.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tried := map[int]bool{}
	for {
		base := portBlock(t, o.Replicas, tried)
		tried[base] = true
		f.layout(ctx, t, base)
		if f.startHAProxy(ctx, t, haproxy) {
			break
		}
		if len(tried) == 3 {
			t.Fatalf("haproxy could not bind its ports in 3 blocks\n%s", f.HAProxy.LogTail())
		}
		t.Logf("haproxy could not bind in block %d, trying another\n%s", base, f.HAProxy.LogTail())
	}
	f.Backend = testvsftpd.Start(ctx, t, testvsftpd.Options{Port: f.base + offVsftpd, PasvLo: f.base + offVsPassive, PasvHi: f.base + offVsPassive + vsPassive - 1, PKI: f.backendPKI})
	f.User = f.Backend.User
	for _, r := range f.Replicas {
		r.Start(ctx, t)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f.WaitBalanced(wctx, t)
	return f
}

// layout places the fleet on the block at base: writes the replicas'
// files, checks them with validate --fleet and generates haproxy.cfg.
func (f *Fleet) layout(ctx context.Context, t testing.TB, base int) {
	t.Helper()
	f.base = base
	f.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(base+offControl))
	f.PasvLo, f.PasvHi = base+offGwPassive, base+offGwPassive+f.opts.Replicas*perReplica-1
	f.Replicas = nil
	var files []string
	for i := 0; i < f.opts.Replicas; i++ {
		r := &Replica{Index: i, Host: replicaHost(i), f: f,
			ControlAddr: net.JoinHostPort(replicaHost(i), strconv.Itoa(base+offControl)),
			AdminAddr:   net.JoinHostPort(replicaHost(i), strconv.Itoa(base+offAdmin)),
			PasvLo:      f.PasvLo + i*perReplica, PasvHi: f.PasvLo + (i+1)*perReplica - 1,
			ConfigPath: filepath.Join(f.Dir, fmt.Sprintf("gw%d.yaml", i)),
			logPath:    filepath.Join(f.Dir, fmt.Sprintf("gw%d.log", i)),
		}
		if err := os.WriteFile(r.ConfigPath, []byte(f.replicaYAML(r)), 0o600); err != nil {
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
	// The harness's own addition: a stats socket, to read the servers' states.
	f.statsSocket = filepath.Join(f.Dir, "haproxy.sock")
	cfg += fmt.Sprintf("\n# Added by the test harness.\nglobal\n    stats socket %s mode 600 level admin\n", f.statsSocket)
	if err := os.WriteFile(f.HAProxyConfig, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startHAProxy checks and starts HAProxy and waits until its control
// port accepts; false when it exited first (a port was taken).
func (f *Fleet) startHAProxy(ctx context.Context, t testing.TB, haproxy string) bool {
	t.Helper()
	if out, err := exec.CommandContext(ctx, haproxy, "-c", "-f", f.HAProxyConfig).CombinedOutput(); err != nil {
		cfg, _ := os.ReadFile(f.HAProxyConfig)
		t.Fatalf("haproxy -c rejects the generated configuration: %v\n%s\n%s", err, out, cfg)
	}
	f.HAProxy = testproc.Start(t, "haproxy", filepath.Join(f.Dir, fmt.Sprintf("haproxy-%d.log", f.base)), nil, haproxy, "-db", "-f", f.HAProxyConfig)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", f.Addr, time.Second); err == nil {
			c.Close()
			return true
		}
		if f.HAProxy.Exited() {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("haproxy does not accept on %s\n%s", f.Addr, f.HAProxy.LogTail())
	return false
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
func (f *Fleet) replicaYAML(r *Replica) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("listeners:")
	w("  - name: explicit")
	w("    address: %s", r.ControlAddr)
	w("    tls: explicit")
	w("    proxy_protocol: {enabled: true, trusted: [127.0.0.1/32]}")
	w("tls: {cert_file: %q, key_file: %q}", f.pki.ChainFile, f.pki.KeyFile)
	w("backend: {address: 127.0.0.1:%d, tls: explicit, ca_file: %q}", f.base+offVsftpd, f.backendPKI.CAFile)
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
	env := append([]string(nil), r.f.opts.Env...)
	if r.f.opts.EnvFor != nil {
		env = append(env, r.f.opts.EnvFor(r.Index)...)
	}
	r.Proc = testproc.Start(t, fmt.Sprintf("ftpsgate gw%d", r.Index), r.logPath, env, r.f.Bin, "run", "--config", r.ConfigPath)
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

// WaitBalanced waits until HAProxy has every running replica up in every
// control backend (its /readyz checks), and every killed one down.
func (f *Fleet) WaitBalanced(ctx context.Context, t testing.TB) {
	t.Helper()
	for _, r := range f.Replicas {
		f.WaitServer(ctx, t, r.Index, !r.Proc.Exited())
	}
}

// WaitServer waits until HAProxy reports replica i UP (up) or DOWN (!up)
// in every control backend: after Kill, before new sessions must avoid
// it; after Start, before they may reach it again (checks every 2 s,
// fall 2, rise 2).
func (f *Fleet) WaitServer(ctx context.Context, t testing.TB, i int, up bool) {
	t.Helper()
	want := map[bool]string{true: "UP", false: "DOWN"}[up]
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		states, err := f.ServerStates()
		ok := err == nil && len(states) > 0
		for backend, servers := range states {
			if !strings.HasPrefix(backend, "ftps_") {
				continue
			}
			if st := servers[fmt.Sprintf("gw%d", i)]; !strings.HasPrefix(st, want) {
				ok = false
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("HAProxy does not report gw%d %s: %v %v\n%s", i, want, states, err, f.Diagnostics())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ServerStates is HAProxy's "show stat": backend -> server -> status
// (UP, DOWN, "UP 1/2" while rising...).
func (f *Fleet) ServerStates() (map[string]map[string]string, error) {
	c, err := net.DialTimeout("unix", f.statsSocket, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) < 18 || strings.HasPrefix(fields[0], "#") || fields[1] == "FRONTEND" || fields[1] == "BACKEND" {
			continue
		}
		if out[fields[0]] == nil {
			out[fields[0]] = map[string]string{}
		}
		out[fields[0]][fields[1]] = fields[17]
	}
	return out, sc.Err()
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
