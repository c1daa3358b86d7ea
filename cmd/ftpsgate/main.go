// Command ftpsgate is an FTPS security gateway and reverse proxy for legacy
// FTP servers. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/metrics"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `ftpsgate: FTPS security gateway and reverse proxy for legacy FTP servers.

Usage:
  ftpsgate run --config FILE        run the gateway (also: ftpsgate --config FILE)
  ftpsgate validate --config FILE   check a configuration and exit
  ftpsgate validate --fleet FILE... check the replicas of a fleet behind one balancer
  ftpsgate haproxy FILE...          print a haproxy.cfg for a fleet of replicas
  ftpsgate firewall --config FILE --format nftables|iptables|firewalld|k8s-service
                                    print firewall rules for the gateway's ports
  ftpsgate demo [--dir DIR]         run a demo gateway in front of an embedded FTP server
  ftpsgate bans list|add|remove     list, add or lift bans through the admin API
  ftpsgate backends                 list the backends, their health and agents (admin API)
  ftpsgate audit verify|tail        check an audit file's hash chain; print its last records
  ftpsgate users add|passwd|disable|enable|list|totp
                                    edit the local users file
  ftpsgate agent --config FILE      run the reverse-connect agent (inside the LAN)
  ftpsgate version                  print the version

Run "ftpsgate COMMAND --help" for the flags of a command.
Every configuration key can be overridden by an environment variable
FTPSGATE_<SECTION>_<KEY>, e.g. FTPSGATE_BACKEND_ADDRESS=10.0.0.5:21; an
FTPSGATE_ variable that names no key is an error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "bans":
		return cmdBans(rest, stdout, stderr)
	case "backends":
		return cmdBackends(rest, stdout, stderr)
	case "users":
		return cmdUsers(rest, os.Stdin, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "haproxy":
		return cmdHAProxy(rest, stdout, stderr)
	case "firewall":
		return cmdFirewall(rest, stdout, stderr)
	case "agent":
		return cmdAgent(rest, stderr)
	case "version":
		fmt.Fprintln(stdout, "ftpsgate", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(cmd) > 0 && cmd[0] == '-' {
		return cmdRun(args, stderr) // ftpsgate --config FILE
	}
	fmt.Fprintf(stderr, "ftpsgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

func newFlagSet(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ftpsgate %s\n\n%s\n\nFlags:\n", name, help)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses and says whether to go on; exit is the code otherwise.
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, exit int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %v\n", fs.Args())
		fs.Usage()
		return false, 2
	}
	return true, 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlagSet("run --config FILE", "Runs the gateway until SIGTERM or SIGINT; then running transfers may finish for timeouts.shutdown_grace.", stderr)
	config := fs.String("config", "", "configuration file (YAML)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *config == "" {
		fmt.Fprintln(stderr, "ftpsgate run: --config FILE is required")
		return 2
	}
	cfg, err := loadFile(*config)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate: %v\n", err)
		return 1
	}
	return serve(cfg, stderr)
}

// serve runs the gateway until a signal arrives.
func serve(cfg *loaded, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return serveContext(ctx, cfg, stderr)
}

// reloader reloads something with files behind it: the served
// certificate (proxy.Server), the users file, the access section.
type reloader interface{ Reload() error }

// keyedReloader is a reloader and the configuration key its errors name.
type keyedReloader struct {
	key string
	r   reloader
}

// reloadOnHUP runs reloadConfig on every SIGHUP until ctx is done. The
// signal is caught from when it returns.
func reloadOnHUP(ctx context.Context, srv reloader, name *nat.PublicName, others []keyedReloader, log zerolog.Logger, sink events.Sink) {
	onHUP(ctx, func() { reloadConfig(ctx, srv, name, others, log, sink) })
}

// onHUP calls fn on every SIGHUP, one at a time, until ctx is done. The
// signal is caught from when it returns.
func onHUP(ctx context.Context, fn func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				fn()
			}
		}
	}()
}

// reloadConfig is one SIGHUP: it reloads the certificate and the others
// (the users file, the access section), resolves passive.public_host again
// when it is a name, and reports the result once: an events.ConfigReload
// and a log line. What failed keeps its last good value.
func reloadConfig(ctx context.Context, srv reloader, name *nat.PublicName, others []keyedReloader, log zerolog.Logger, sink events.Sink) {
	var errs []error
	if err := srv.Reload(); err != nil {
		errs = append(errs, fmt.Errorf("certificate: %w", err))
	}
	for _, o := range others {
		if err := o.r.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.key, err))
		}
	}
	if name != nil {
		if err := resolvePublicName(ctx, name, log); err != nil {
			errs = append(errs, fmt.Errorf("passive.public_host: %w", err))
		}
	}
	err := errors.Join(errs...)
	sink.Emit(events.ConfigReload{OK: err == nil, Err: err})
	if err != nil {
		log.Error().Err(err).Msg("configuration reload failed: the last good values stay")
		return
	}
	log.Info().Msg("configuration reloaded")
}

// serveContext runs the gateway (and the admin API, when configured) until
// ctx is done, then shuts it down gracefully. It returns the exit code.
func serveContext(ctx context.Context, cfg *loaded, stderr io.Writer) int {
	log := newLogger(cfg.log, os.Stderr)
	nofile, err := descriptorLimit()
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate: %v\n", err)
		return 1
	}
	note, ws := warnings(cfg, nofile)
	if note != "" {
		log.Info().Msg(note)
	}
	for _, w := range ws {
		log.Warn().Str("key", w.Key).Msg("weakened setting: " + w.String())
	}
	d, err := compose(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "ftpsgate: %v\n", err)
		return 1
	}
	defer closeTrail(d.audit, log) // after shutdown: the last sessions' records
	defer d.closeFleet()           // after shutdown: the last sessions' places
	srv := d.srv
	log.Info().Str("version", versionString()).Msg("ftpsgate starting")
	if n := cfg.proxy.Passive.PublicName; n != nil {
		log.Info().Str("key", "passive.public_host").Str("name", n.Name).Stringer("address", n.Addr()).Msg("passive.public_host resolved: 227 replies advertise this address")
	}
	if err := srv.Start(ctx); err != nil {
		log.Error().Err(err).Msg("ftpsgate cannot start")
		return 1
	}
	defer d.auth.close()
	if d.hub != nil {
		defer d.hub.Close() // after shutdown: the last sessions' streams
	}
	defer d.inspect.Close() // the ICAP client held at the end
	reloadOnHUP(ctx, srv, cfg.proxy.Passive.PublicName, d.reloaders(), log, d.sink)
	var api *admin.Server
	if cfg.admin.Enabled() {
		api, err = admin.New(cfg.admin, d.bans, sessionLister{srv}, log, admin.WithAdmission(d.admission), admin.WithReadiness(srv),
			admin.WithBackends(backendLister{srv: srv, hub: d.hub}))
		if err == nil {
			api.Handle("GET /metrics", metricsHandler(d))
			err = api.Start(ctx)
		}
		if err != nil {
			log.Error().Err(err).Msg("admin API cannot start")
			shutdown(srv, cfg, log)
			return 1
		}
		log.Info().Str("address", api.Addr()).Msg("admin API listening")
	}
	<-ctx.Done()
	if api != nil {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = api.Shutdown(actx)
		cancel()
	}
	shutdown(srv, cfg, log)
	return 0
}

// shutdown stops the gateway with the configured grace period.
func shutdown(srv *proxy.Server, cfg *loaded, log zerolog.Logger) {
	sctx, cancel := context.WithTimeout(context.Background(), cfg.proxy.Timeouts.Grace())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("transfers were cut at the end of the grace period")
	}
}

// sessionLister adapts the proxy's sessions to the admin API.
type sessionLister struct{ srv *proxy.Server }

func (l sessionLister) Sessions() []admin.SessionInfo {
	var out []admin.SessionInfo
	for _, s := range l.srv.Sessions() {
		out = append(out, admin.SessionInfo{
			ID: s.ID, Client: s.Client, User: s.User, Listener: s.Listener, Backend: s.Backend,
			Started: s.Started, BytesUp: s.BytesUp, BytesDown: s.BytesDown,
		})
	}
	return out
}

// metricsHandler serves the gateway's Prometheus metrics: the counters
// its events feed, and gauges read from its state at scrape time.
func metricsHandler(d *composed) http.Handler {
	d.metrics.Watch(metrics.State{
		PassiveInUse:     d.srv.PassiveInUse,
		BansActive:       d.bansActive,
		TrackedAddresses: func() int { return d.admission.Stats().TrackedIPs },
		CertNotAfter:     d.certs.NotAfter,
	})
	if d.fleet != nil {
		d.metrics.WatchFleet(metrics.FleetState{
			Down: d.fleet.Degraded, BanCache: d.fleetBans.CacheSize, Leases: d.fleet.Leases,
			LocalMode: d.fleet.Mode() == fleet.ModeLocal,
		})
	}
	return d.metrics.Handler()
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate --config FILE", "Checks a configuration: prints \"configuration ok\" and a \"warning:\" line per setting that weakens a safe default, or one line per problem naming its key.", stderr)
	config := fs.String("config", "", "configuration file (YAML)")
	verbose := fs.Bool("verbose", false, "also print the effective TLS policy of every listener")
	fleet := fs.Bool("fleet", false, "check the replicas of a fleet: validate --fleet [--balancer-ports LOW-HIGH] A.yaml B.yaml ... (one file per replica, or one with passive.replica_index: hostname)")
	balancer := fs.String("balancer-ports", "", "with --fleet: the passive range the balancer maps to the fleet (default: each replica's passive.ports)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *fleet {
		files := fs.Args()
		if *config != "" {
			files = append([]string{*config}, files...)
		}
		return validateFleet(files, *balancer, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v (the files of a fleet need --fleet)\n", fs.Args())
		fs.Usage()
		return 2
	}
	if *config == "" {
		fmt.Fprintln(stderr, "ftpsgate validate: --config FILE is required")
		return 2
	}
	cfg, err := loadFile(*config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "configuration ok")
	nofile, err := descriptorLimit()
	if err != nil {
		fmt.Fprintln(stderr, "ftpsgate validate:", err)
		return 1
	}
	note, ws := warnings(cfg, nofile)
	for _, w := range ws {
		fmt.Fprintln(stdout, "warning: "+w.String())
	}
	if *verbose && note != "" {
		fmt.Fprintln(stdout, note)
	}
	if *verbose {
		for _, l := range cfg.proxy.Listeners {
			fmt.Fprintf(stdout, "\nlistener %s (%s, %s):\n", l.Name, l.Address, l.TLS)
			for _, line := range cfg.proxy.TLS.With(l.TLSOverride).Describe() {
				fmt.Fprintln(stdout, "  "+line)
			}
		}
	}
	return 0
}

// resolvePublicName resolves passive.public_host again (SIGHUP) and logs
// the address 227 replies now carry; on failure the last one stays, and
// the error is returned.
func resolvePublicName(ctx context.Context, n *nat.PublicName, log zerolog.Logger) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	a, err := n.Refresh(rctx)
	if err != nil {
		log.Error().Err(err).Str("key", "passive.public_host").Stringer("address", n.Addr()).Msg("passive.public_host not resolved again: 227 replies keep the last address")
		return err
	}
	log.Info().Str("key", "passive.public_host").Str("name", n.Name).Stringer("address", a).Msg("passive.public_host resolved again")
	return nil
}
