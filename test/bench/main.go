// Command bench measures ftpsgate on loopback against a direct connection to
// vsftpd and against ProFTPD's mod_proxy, and prints one table (markdown);
// its features phase adds four small tables: what transfers.hash costs the
// relay, what edge authentication costs a login, what the audit trail
// costs sessions and the relay, and what content inspection (DLP, held
// downloads, ICAP) costs the relay.
//
//	go run ./test/bench [--quick] [--out FILE] [--profile DIR]
//
// It needs root (it creates a local FTP user for vsftpd and unpacks ProFTPD
// into /opt/ftpsgate-bench), vsftpd and curl, and uses lftp when installed.
// See test/bench/README.md for what each figure means.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// sizes and bounds of one run.
type plan struct {
	quick         bool
	bigSize       int64            // single-stream file
	streamLimit   time.Duration    // one single-stream transfer
	sessionsFor   time.Duration    // each sessions/s measurement (one round)
	sessionsMax   int              // and at most this many sessions
	sessionRounds int              // rounds through the targets, summed
	idleCounts    []int            // idle sessions held, through vsftpd
	idleStub      int              // idle sessions through the gateway to the stub backend (0: none)
	concurrent    int              // simultaneous transfers
	concSize      int64            // of this many bytes each
	concLimit     time.Duration    // for all of them
	budget        time.Duration    // the whole run
	phaseBudget   [6]time.Duration // sessions, idle, stream, concurrent, features, agent: a slow phase cannot eat the others' time
	pause         time.Duration    // settling time around the idle measurements
	openParallel  int              // sessions opened at once while filling the idle pool
	featRounds    int              // features: rounds through the hash settings and the login modes, summed
	inspRounds    int              // features: rounds through the inspection gateways, summed
	loginsFor     time.Duration    // features: each logins/s measurement (one round)
	loginsMax     int              // and at most this many logins
	agentRounds   int              // agent: rounds, each figure the median over them
	agentFor      time.Duration    // agent: each sessions/s measurement (one round)
}

func fullPlan() plan {
	return plan{
		bigSize: 1 << 30, streamLimit: 3 * time.Minute,
		sessionsFor: 2500 * time.Millisecond, sessionsMax: 1500, sessionRounds: 3,
		idleCounts: []int{1000}, idleStub: 10000,
		concurrent: 200, concSize: 16 << 20, concLimit: time.Minute,
		featRounds: 2, inspRounds: 2, loginsFor: 2500 * time.Millisecond, loginsMax: 1000,
		agentRounds: 5, agentFor: 1500 * time.Millisecond,
		budget: 23 * time.Minute, openParallel: 16,
		phaseBudget: [6]time.Duration{110 * time.Second, 300 * time.Second, 310 * time.Second, 190 * time.Second, 390 * time.Second, 230 * time.Second},
		pause:       2 * time.Second,
	}
}

func quickPlan() plan {
	return plan{
		quick:   true,
		bigSize: 64 << 20, streamLimit: 20 * time.Second, // 64 MiB takes 1-2 s; a stuck transfer (mod_proxy FTPS→FTPS uploads, at times) must not eat CI time
		sessionsFor: 1500 * time.Millisecond, sessionsMax: 500, sessionRounds: 1,
		idleCounts: []int{200}, idleStub: 0,
		concurrent: 20, concSize: 1 << 20, concLimit: time.Minute,
		featRounds: 2, inspRounds: 1, loginsFor: time.Second, loginsMax: 300,
		agentRounds: 3, agentFor: 500 * time.Millisecond,
		budget: 395 * time.Second, openParallel: 16,
		phaseBudget: [6]time.Duration{40 * time.Second, 90 * time.Second, 80 * time.Second, 40 * time.Second, 100 * time.Second, 40 * time.Second},
		pause:       700 * time.Millisecond,
	}
}

// onlyPhases limits the phases run (--only); "" runs all.
var onlyPhases string

// keepDir leaves the temporary directory in place at exit (--keep).
var keepDir bool

// env is what every phase shares.
type env struct {
	plan
	dir        string // temporary directory of the run (mode 0711)
	root       string // vsftpd's local_root, owned by the bench user
	pki        *testpki.Files
	acct       account
	gatewayBin string
	clientTLS  *tls.Config
	bigName    string // in root
	bigPath    string
	bigSum     string
	concName   string
	concSum    string
	res        *results
	// feat holds the features phase's tables (transfers.hash, logins, audit);
	// printed after the main table when the phase ran.
	feat []*results
	// plainBackend is the plain vsftpd's address ("" if it did not
	// start), for the gateways the features phase starts.
	plainBackend string
	// idleStubNote says why idleStub is below the plan's.
	idleStubNote string
	// fail holds checks that failed (the audit file's): the run exits 1.
	fail []string
}

// target is one way to reach the files: directly or through a proxy.
type target struct {
	key  string
	addr string   // explicit FTPS control address
	cpu  cpuMeter // the proxy's CPU; nil for direct
	mem  memMeter // memory of the process(es) that serve the client
	na   string   // why it cannot be measured ("" if it can)
	pid  int      // the gateway's process, where a phase reads more of /proc (0: not set)
	side cpuMeter // processes beside the proxy whose CPU a table gives apart (the ICAP scanner); nil: none
}

func main() {
	// The agent phase's hop relay: the bench re-executes itself (hoprelay.go).
	if len(os.Args) > 1 && os.Args[1] == hopRelayCmd {
		os.Exit(hopRelayMain(os.Args[2:]))
	}
	quick := flag.Bool("quick", false, "small sizes and counts (about 1-2 minutes): what CI runs")
	out := flag.String("out", "", "also write the table (markdown) to this file")
	profile := flag.String("profile", "", "instead of the table: CPU-profile an in-process gateway (FTPS->plain) during a download and an upload with curl, into this directory")
	noModProxy := flag.Bool("no-modproxy", false, "do not fetch or run ProFTPD mod_proxy")
	only := flag.String("only", "", "run only these phases, comma-separated: sessions, idle, stream, concurrent, features, agent")
	keep := flag.Bool("keep", false, "keep the temporary directory (configurations, server logs) for debugging")
	flag.Parse()
	keepDir = *keep
	onlyPhases = *only

	p := fullPlan()
	if *quick {
		p = quickPlan()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, p, *out, *profile, *noModProxy)
	stop()
	os.Exit(code)
}

// run does the whole measurement and cleans up whatever happens: processes
// killed, the temporary directory removed.
func run(ctx context.Context, p plan, outFile, profileDir string, noModProxy bool) (code int) {
	start := time.Now()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: must run as root: vsftpd logs in a local user the bench creates (useradd, chpasswd)")
		return 2
	}
	ctx, cancel := context.WithTimeoutCause(ctx, p.budget, fmt.Errorf("the run's time budget of %s ran out", p.budget))
	defer cancel()
	dir, err := os.MkdirTemp("", "ftpsgate-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer func() {
		stopAll()
		if keepDir {
			logf("kept %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
		}
	}()
	// A second Ctrl-C, or a phase stuck past the budget: clean up and go.
	go func() {
		<-ctx.Done()
		time.Sleep(30 * time.Second)
		fmt.Fprintln(os.Stderr, "bench: still busy 30s after being stopped: killing everything")
		stopAll()
		os.RemoveAll(dir)
		os.Exit(3)
	}()

	e, err := setup(ctx, p, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: setup:", err)
		return 1
	}
	if profileDir != "" {
		if err := profileGateway(ctx, e, profileDir); err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			return 1
		}
		return 0
	}
	targets, versions := startTargets(ctx, e, noModProxy)

	phases := []struct {
		key, name string
		fn        func(context.Context, *env, []*target)
	}{
		// Sessions first, on fresh processes: after the idle phase a
		// server still returns the memory of 1,000 closed sessions, and
		// that CPU would be counted per session.
		{"sessions", "sessions per second", phaseSessions},
		{"idle", "idle sessions", phaseIdle},
		{"stream", "single-stream transfers", phaseStream},
		{"concurrent", "concurrent transfers", phaseConcurrent},
		// Last: it starts gateways of its own.
		{"features", "features: transfers.hash, edge logins, the audit trail and content inspection", phaseFeatures},
		// After features: it takes two of its passive ranges.
		{"agent", "the reverse-connect agent against a dialled backend", phaseAgent},
	}
	for i, ph := range phases {
		if ctx.Err() != nil {
			break
		}
		if onlyPhases != "" && !slices.Contains(strings.Split(onlyPhases, ","), ph.key) {
			continue
		}
		logf("== %s (at most %s)", ph.name, p.phaseBudget[i])
		pctx, cancel := context.WithTimeoutCause(ctx, p.phaseBudget[i], fmt.Errorf("the %s phase ran out of its %s", ph.name, p.phaseBudget[i]))
		ph.fn(pctx, e, targets)
		if pctx.Err() != nil && ctx.Err() == nil {
			logf("%v: the rest of it is not measured", context.Cause(pctx))
			if ph.key == "features" || ph.key == "agent" {
				for _, t := range e.feat {
					t.missingAll("not measured: " + context.Cause(pctx).Error())
				}
			} else {
				e.res.missing(targets, "not measured: "+context.Cause(pctx).Error())
			}
		}
		cancel()
	}
	stopAll()
	if ctx.Err() != nil {
		e.res.missing(targets, "not measured: "+context.Cause(ctx).Error())
		for _, t := range e.feat {
			t.missingAll("not measured: " + context.Cause(ctx).Error())
		}
	}

	mode := "full"
	if p.quick {
		mode = "quick"
	}
	header := []string{
		fmt.Sprintf("# ftpsgate benchmark (%s run, %s)", mode, time.Now().UTC().Format("2006-01-02 15:04 UTC")),
		"",
		fmt.Sprintf("Machine: %s, %d cores, %s; %s. Everything on loopback, client and servers on the same cores.", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version()),
		"Programs: " + strings.Join(versions, "; ") + ".",
		fmt.Sprintf("Single stream: %s file; idle sessions: %s; concurrent: %d × %s. Run took %s.",
			human(p.bigSize), idleCountsText(e.plan), p.concurrent, human(p.concSize), time.Since(start).Round(time.Second)),
	}
	if ctx.Err() != nil {
		header = append(header, "", "**The run was cut short ("+context.Cause(ctx).Error()+"): cells not measured are missing.**")
		code = 1
	}
	for _, f := range e.fail {
		header = append(header, "", "**A check failed: "+f+".**")
		code = 1
	}
	var buf bytes.Buffer
	e.res.markdown(&buf, header)
	for _, t := range e.feat {
		if !t.empty() {
			fmt.Fprintln(&buf)
			t.markdown(&buf, []string{"### " + t.title})
		}
	}
	fmt.Print("\n" + buf.String())
	if outFile != "" {
		if err := os.WriteFile(outFile, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	return code
}

func idleCountsText(p plan) string {
	var s []string
	for _, n := range p.idleCounts {
		s = append(s, fmt.Sprint(n))
	}
	if p.idleStub > 0 {
		s = append(s, fmt.Sprintf("%d (gateway only, stub backend)", p.idleStub))
	}
	return strings.Join(s, " and ")
}

// setup prepares the user, the certificate, the files and the gateway
// binary.
func setup(ctx context.Context, p plan, dir string) (*env, error) {
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	// Through a proxy, 10,000 sessions are 20,000 sockets in one process;
	// the bench holds as many. Children inherit the limit.
	nofile, err := raiseNoFile(100000)
	if err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	e := &env{plan: p, dir: dir, root: filepath.Join(dir, "root"), res: newResults()}
	// A session through the gateway holds two descriptors there (client and
	// backend), and the bench two (client and stub backend).
	if fit := int(nofile-300) / 2; e.idleStub > fit {
		e.idleStubNote = fmt.Sprintf("%d sessions, not %d: RLIMIT_NOFILE is %d here (the hard limit, which only CAP_SYS_RESOURCE raises) and each session holds two descriptors in the gateway", fit, e.idleStub, nofile)
		e.idleStub = fit
	}
	defineMetrics(e)
	if e.acct, err = ensureAccount(); err != nil {
		return nil, err
	}
	if err := os.Mkdir(e.root, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chown(e.root, e.acct.UID, e.acct.GID); err != nil {
		return nil, err
	}
	if e.pki, err = testpki.WriteServer(dir, "ftpsgate bench CA"); err != nil {
		return nil, err
	}
	e.clientTLS = clientConfig(e.pki.Pool)
	moduleDir, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	logf("building the gateway")
	if e.gatewayBin, err = buildGateway(ctx, moduleDir, dir); err != nil {
		return nil, err
	}
	logf("writing the test files (%s and %s)", human(p.bigSize), human(p.concSize))
	e.bigName = "big.bin"
	e.bigPath = filepath.Join(e.root, e.bigName)
	if e.bigSum, err = writeRandomFile(e.bigPath, p.bigSize, 1); err != nil {
		return nil, err
	}
	e.concName = "conc.bin"
	if e.concSum, err = writeRandomFile(filepath.Join(e.root, e.concName), p.concSize, 2); err != nil {
		return nil, err
	}
	for _, f := range []string{e.bigName, e.concName} {
		if err := os.Chown(filepath.Join(e.root, f), e.acct.UID, e.acct.GID); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// moduleRoot is the directory of go.mod (the bench runs with go run from
// inside the module).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the ftpsgate module: run the bench from the repository (go run ./test/bench)")
	}
	return filepath.Dir(mod), nil
}

func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func human(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func kernel() string {
	out, err := exec.Command("uname", "-sr").Output()
	if err != nil {
		return "unknown kernel"
	}
	return strings.TrimSpace(string(out))
}

// programVersions names the client and server programs as Debian packaged
// them.
func programVersions() []string {
	var v []string
	for _, pkg := range []string{"vsftpd", "curl", "lftp"} {
		out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
		if err == nil && len(out) > 0 {
			v = append(v, pkg+" "+string(out))
		} else {
			v = append(v, pkg+" (not installed)")
		}
	}
	return v
}

func proftpdVersion() string {
	v := "ProFTPD"
	cmd := exec.Command(proftpdBin(), "-v")
	cmd.Env = append(os.Environ(), proftpdEnv()...)
	if out, err := cmd.CombinedOutput(); err == nil {
		v = strings.TrimSpace(lastLine(out))
		if i := strings.Index(v, "ProFTPD"); i >= 0 {
			v = v[i:]
		}
	}
	if b, err := os.ReadFile(filepath.Join(proftpdPrefix, "usr/share/doc/proftpd-mod-proxy/changelog.Debian.gz")); err == nil && len(b) > 0 {
		v += " + mod_proxy (proftpd-mod-proxy .deb)"
	}
	return v
}
