package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// loaded is a checked configuration.
type loaded struct {
	proxy   proxy.Config
	admin   admin.Config
	log     logConfig
	auth    *authSetup
	access  *vfs.Access   // nil: nobody confined
	audit   *auditSetup   // the audit trail
	inspect *dlp.Config   // inspect.dlp; nil: off
	icap    *icap.Config  // inspect.icap; nil: off
	agents  *agentsSetup  // the agents: section; nil: no agent listener
	path    string        // the file it came from ("" when embedded): SIGHUP reads it again
	fleet   replicaSlot   // passive.ports split between passive.replicas
	shared  *fleet.Config // the fleet section (shared state in Redis); nil: off

	inspectPolicies []inspectPolicy // inspect.policies (inspectpolicy.go)
}

// newViper returns a viper instance (never the global one) with defaults
// and environment overrides.
func newViper() *viper.Viper {
	v := viper.New()
	v.SetConfigType("yaml")
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("FTPSGATE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	return v
}

// loadFile reads a YAML file; loadBytes reads embedded YAML. Both apply
// environment overrides, then check everything.
func loadFile(path string) (*loaded, error) { return loadFileWith(path, nil) }

// loadFileWith is loadFile with overrides set over the file and the
// environment (validate --fleet: each replica index of a shared file).
func loadFileWith(path string, overrides map[string]any) (*loaded, error) {
	v := newViper()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	for k, val := range overrides {
		v.Set(k, val)
	}
	l, err := build(v)
	if l != nil {
		l.path = path
	}
	return l, err
}

func loadBytes(b []byte, overrides map[string]any) (*loaded, error) {
	v := newViper()
	if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("read embedded configuration: %w", err)
	}
	for k, val := range overrides {
		v.Set(k, val)
	}
	return build(v)
}

// problems collects the configuration's problems, each a *confkey.Error
// naming its key; err joins them, and prints one "key: message" a line.
type problems struct {
	list []*confkey.Error
	keys map[string]bool
}

// add records err (a message about key, or problems keyed relative to it).
func (p *problems) add(key string, err error) {
	for _, e := range confkey.List(confkey.Under(key, err)) {
		if p.keys == nil {
			p.keys = map[string]bool{}
		}
		p.keys[e.Key] = true
		p.list = append(p.list, e)
	}
}

// addNew records the problems in err whose keys have none yet: a value that
// did not parse is reported once, not again by the semantic checks.
func (p *problems) addNew(err error) {
	var fresh []*confkey.Error
	for _, e := range confkey.List(err) {
		if !p.keys[e.Key] {
			fresh = append(fresh, e) // several on one key all count
		}
	}
	for _, e := range fresh {
		p.add(e.Key, e.Err)
	}
}

func (p *problems) err() error {
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func build(v *viper.Viper) (*loaded, error) {
	var fc fileConfig
	if err := v.UnmarshalExact(&fc); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	var p problems
	p.add("", unknownEnv(os.Environ()))
	var c proxy.Config

	for i, l := range fc.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		mode, err := proxy.ParseTLSMode(l.TLS)
		if l.TLS == "" {
			err = errors.New("must be explicit or implicit")
		}
		p.add(key+".tls", err)
		var o policy.Override
		if l.MinVersion != "" {
			o.MinVersion, err = policy.ParseTLSVersion(l.MinVersion)
			p.add(key+".min_version", err)
		}
		o.CipherSuites = suites(&p, key+".cipher_suites", l.CipherSuites)
		o.Curves = curves(&p, key+".curves", l.Curves)
		pp := proxy.ProxyProtocol{Enabled: l.ProxyProto.Enabled}
		pp.Trusted = prefixes(&p, key+".proxy_protocol.trusted", l.ProxyProto.Trusted)
		cleartext := l.RequireTLS != nil && !*l.RequireTLS
		c.Listeners = append(c.Listeners, proxy.Listener{Name: l.Name, Address: l.Address, TLS: mode, AllowCleartext: cleartext, TLSOverride: o, ProxyProtocol: pp})
	}

	minVersion, err := policy.ParseTLSVersion(fc.TLS.MinVersion)
	p.add("tls.min_version", err)
	clientAuth, err := policy.ParseClientAuth(fc.TLS.ClientAuth)
	p.add("tls.client_auth", err)
	certUser, err := policy.ParseCertUser(fc.TLS.ClientCertUser)
	p.add("tls.client_cert_user", err)
	reuse, err := policy.ParseSessionReuse(fc.TLS.DataSessionReuse)
	p.add("tls.data_session_reuse", err)
	c.TLS = policy.TLSConfig{
		CertFile: fc.TLS.CertFile, KeyFile: fc.TLS.KeyFile,
		MinVersion:           minVersion,
		CipherSuites:         suites(&p, "tls.cipher_suites", fc.TLS.CipherSuites),
		Curves:               curves(&p, "tls.curves", fc.TLS.Curves),
		RequireProtectedData: fc.TLS.RequireProtectedData,
		DataSessionReuse:     reuse,
		ClientAuth:           clientAuth,
		ClientCAFile:         fc.TLS.ClientCAFile,
		ClientCertUser:       certUser,
	}
	c.TLS.ClientCertUserCaseInsensitive = fc.TLS.ClientCertUserCaseInsensitive
	authCfg := buildAuth(&p, fc.Auth)
	auditCfg := buildAudit(&p, fc.Audit)
	inspectCfg := buildInspect(&p, fc.Inspect)
	icapCfg := buildICAP(&p, fc.Inspect.ICAP)
	c.HoldDownloads, c.Hold = buildHold(&p, fc.Inspect)
	inspectPols := buildInspectPolicies(&p, v, fc.Inspect, icapCfg, authCfg.gateway())
	fleetCfg := buildFleet(&p, fc.Fleet)
	c.TLS.ClientCertPins = authCfg.gateway() // the edge checks pins
	c.Login = policy.LoginPolicy{AllowAnonymous: fc.Policy.AllowAnonymous}
	for _, site := range fc.Policy.AllowedSiteCommands {
		c.Login.AllowedSiteCommands = append(c.Login.AllowedSiteCommands, strings.ToUpper(strings.TrimSpace(site)))
	}

	buildBackends(&p, &fc, &c)
	agents := buildAgents(&p, fc.Agents, viaKeys(c))
	if h := strings.TrimSpace(fc.Passive.PublicHost); h != "" {
		c.Passive.PublicHost, c.Passive.PublicName = publicHost(&p, h)
	}
	ports, err := nat.ParsePortRange(fc.Passive.Ports)
	p.add("passive.ports", err)
	slot := replica(&p, ports, err == nil, fc.Passive.Replicas, fc.Passive.ReplicaIndex)
	ports = slot.Ports
	c.Passive.Ports = ports
	c.ActiveEnabled = fc.Active.Enabled
	c.Hash, err = hashMode(fc.Transfers.Hash, auditCfg.enabled())
	p.add("transfers.hash", err)
	if n, err := vfs.ParseSize(fc.Transfers.HashCommandMaxSize); err != nil {
		p.add("transfers.hash_command_max_size", err)
	} else if c.HashCommandMaxSize = n; n == 0 {
		c.HashCommandMaxSize = -1 // 0 in the file: HASH is only relayed
	}

	dur := func(key, s string) time.Duration {
		d, err := time.ParseDuration(s)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		p.add(key, err)
		return d
	}
	c.TLS.TicketRotation = dur("tls.ticket_rotation", fc.TLS.TicketRotation)
	c.Timeouts = proxy.Timeouts{
		Idle:          dur("timeouts.idle", fc.Timeouts.Idle),
		Login:         dur("timeouts.login", fc.Timeouts.Login),
		Connect:       dur("timeouts.connect", fc.Timeouts.Connect),
		Handshake:     dur("timeouts.handshake", fc.Timeouts.Handshake),
		DataAccept:    dur("timeouts.data_accept", fc.Timeouts.DataAccept),
		DataIdle:      dur("timeouts.data_idle", fc.Timeouts.DataIdle),
		ShutdownGrace: dur("timeouts.shutdown_grace", fc.Timeouts.ShutdownGrace),
	}

	allow := prefixes(&p, "bans.allow", fc.Bans.Allow)
	c.Limits = policy.Limits{
		ConnRate: fc.Limits.ConnRate, ConnBurst: fc.Limits.ConnBurst,
		MaxSessionsPerIP: fc.Limits.MaxSessionsPerIP, MaxSessionsPerUser: fc.Limits.MaxSessionsPerUser,
		MaxSessions: fc.Limits.MaxSessions, MaxPreLoginPerIP: fc.Limits.MaxPreLoginPerIP, MaxPassivePerIP: passivePerIP(&p, fc.Limits.MaxPassivePerIP, ports),
		CommandRate: fc.Limits.CommandRate, CommandBurst: fc.Limits.CommandBurst,
		SessionBandwidth: fc.Limits.SessionBandwidth, TotalBandwidth: fc.Limits.TotalBandwidth,
		Allow: allow,
	}
	c.Bans = policy.BanConfig{
		MaxFailures: fc.Bans.MaxFailures,
		Window:      dur("bans.window", fc.Bans.Window),
		Duration:    dur("bans.duration", fc.Bans.Duration),
		MaxDuration: dur("bans.max_duration", fc.Bans.MaxDuration),
		Weights:     fc.Bans.Weights,
		StateFile:   fc.Bans.StateFile,
		Allow:       allow,
		// A ban ends the address's running sessions unless turned off.
		KeepSessions: !fc.Bans.EndSessions,
	}
	adminCfg := admin.Config{Address: fc.Admin.Address, TokenFile: fc.Admin.TokenFile, Pprof: fc.Admin.Pprof}
	p.add("admin", adminCfg.Validate())
	if ap, ok := ownAddr(fc.Admin.Address); ok {
		c.OwnAddrs = append(c.OwnAddrs, ap) // a backend may not name it as a data port
	}

	if _, err := parseLevel(fc.Log.Level); err != nil {
		p.add("log.level", err)
	}
	switch fc.Log.Format {
	case "", "json", "console":
	default:
		p.add("log.format", fmt.Errorf("%q is not a log format (want json or console)", fc.Log.Format))
	}

	// Semantic checks of the packages, minus keys already reported.
	p.addNew(c.Validate())
	p.addNew(c.CheckOtherListener("admin.address", fc.Admin.Address))
	access := buildAccess(&p, withEmptyProfiles(v, fc.Access), accessContextOf(&loaded{proxy: c, auth: authCfg}))
	if err := p.err(); err != nil {
		return nil, err
	}
	return &loaded{proxy: c, admin: adminCfg, log: fc.Log, auth: authCfg, access: access, audit: auditCfg, inspect: inspectCfg, icap: icapCfg, fleet: slot, agents: agents, inspectPolicies: inspectPols, shared: fleetCfg}, nil
}

// resolveHost looks up passive.public_host when it is a name; nil is the
// system resolver. Tests set it: they never touch the network.
var resolveHost func(ctx context.Context, host string) ([]netip.Addr, error)

// publicHost parses passive.public_host: an IP address, or a DNS name that
// is resolved now (a name that does not resolve to an IPv4 address is a
// problem) and again on SIGHUP.
func publicHost(p *problems, h string) (netip.Addr, *nat.PublicName) {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip, nil
	}
	if err := nat.CheckHostName(h); err != nil {
		p.add("passive.public_host", err)
		return netip.Addr{}, nil
	}
	n := &nat.PublicName{Name: h, Resolve: resolveHost}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := n.Refresh(ctx)
	p.add("passive.public_host", err)
	return netip.Addr{}, n
}

// passivePerIP parses limits.max_passive_per_ip: a number (0: unlimited) or
// "auto", half the passive range, at least 1 (10 of the default 20 ports).
// Half: one address (a client, or a NAT full of them) can never hold the
// whole range, and the cap still fits the parallel data connections of
// common clients (FileZilla 2, lftp 1, rclone's default --transfers 4 with
// its listing checkers); it grows with the range an operator sizes for many
// users. A quarter was tried first: rclone with --transfers 8 --checkers 8
// failed through a 40-port range with it.
func passivePerIP(p *problems, s string, ports nat.PortRange) int {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "auto") || s == "" {
		return max(1, ports.Size()/2)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.add("limits.max_passive_per_ip", fmt.Errorf("%q is not a number or auto", s))
		return 0
	}
	return n // a negative one is reported by policy.Limits.Validate
}

// ownAddr is a TCP listening address as the backend data-port policy
// compares it: a host name (localhost) counts as every address of the host.
// Unix sockets and unparsable addresses have none.
func ownAddr(addr string) (netip.AddrPort, bool) {
	if addr == "" || strings.HasPrefix(addr, "unix:") {
		return netip.AddrPort{}, false
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ip = netip.IPv4Unspecified()
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), true
}

// suites parses cipher suite names; empty means the defaults (nil).
func suites(p *problems, key string, names []string) []uint16 {
	if len(names) == 0 {
		return nil
	}
	ids, err := policy.ParseCipherSuites(names)
	p.add(key, err)
	return ids
}

// curves parses curve names; empty means the defaults (nil).
func curves(p *problems, key string, names []string) []tls.CurveID {
	if len(names) == 0 {
		return nil
	}
	ids, err := policy.ParseCurves(names)
	p.add(key, err)
	return ids
}

// prefixes parses CIDRs ("10.0.0.0/8") and single addresses ("10.0.0.1").
func prefixes(p *problems, key string, items []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range items {
		pre, err := policy.ParseNetwork(s)
		if err != nil {
			p.add(key, err)
			continue
		}
		out = append(out, pre)
	}
	return out
}
