package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/internal/confkey"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy/hold"
	"github.com/ftpsgate/ftpsgate/upstream"
)

// TLSMode says how a connection is secured.
type TLSMode int

// The TLS modes of a listener or the backend.
const (
	TLSNone     TLSMode = iota // plaintext (backend only)
	TLSExplicit                // AUTH TLS on the control port (RFC 4217)
	TLSImplicit                // TLS from the first byte (port 990)
)

// ParseTLSMode parses "none", "explicit" or "implicit".
func ParseTLSMode(s string) (TLSMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none", "":
		return TLSNone, nil
	case "explicit":
		return TLSExplicit, nil
	case "implicit":
		return TLSImplicit, nil
	}
	return 0, fmt.Errorf("%q is not a TLS mode (want none, explicit or implicit)", s)
}

func (m TLSMode) String() string {
	switch m {
	case TLSNone:
		return "none"
	case TLSExplicit:
		return "explicit"
	case TLSImplicit:
		return "implicit"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// Listener is one client-facing listener.
type Listener struct {
	Name    string
	Address string  // host:port
	TLS     TLSMode // TLSExplicit or TLSImplicit
	// AllowCleartext (explicit only) lets USER and PASS through before AUTH
	// TLS: passwords cross in clear. Off (the zero value), they get 530 and
	// nothing reaches the backend (RFC 4217 section 6). Set it only for a
	// network where cleartext is acceptable: Warnings names it.
	AllowCleartext bool
	// TLSOverride changes the TLS policy for this listener only.
	TLSOverride policy.Override
	// ProxyProtocol: connections (control and data) come through a balancer
	// that sends a PROXY header.
	ProxyProtocol ProxyProtocol
}

// Backend is a legacy FTP server behind the gateway.
type Backend struct {
	// Name identifies the backend in routing, logs and metrics (the
	// single Config.Backend: "default").
	Name    string
	Address string // host:port
	TLS     TLSMode
	Trust   policy.BackendTLS
	// ProxyProtocol is 0 (off), 1 or 2: the PROXY header version sent to the
	// backend so that its logs and limits see the real client.
	ProxyProtocol byte
	// DataPorts, when set, are the only data ports the backend may name in
	// its 227/229 replies (its passive range). Zero: any port from 1024.
	// Ports below 1024 and the gateway's own listening ports are refused
	// either way (policy.BackendDataPorts).
	DataPorts nat.PortRange
	// Via, when set, names the tunnel (a group of reverse-connect agents,
	// given to New with WithTunnel) that carries every connection to this
	// backend, control and data: the gateway then needs no route to it.
	Via string
	// Health is its health check (zero: none).
	Health HealthCheck
}

// Timeouts bound every wait of a session. Zero fields take the defaults.
type Timeouts struct {
	Idle          time.Duration // no command from the client (default 5m)
	Login         time.Duration // no command before login: shorter, against idle scanners (default 1m)
	Connect       time.Duration // dialling the backend, its banner and TLS (default 10s)
	Handshake     time.Duration // client TLS handshakes (default 10s)
	DataAccept    time.Duration // until the data connection is established (default 30s)
	DataIdle      time.Duration // no byte either way in a running transfer: cut, 426 (default 2m)
	ShutdownGrace time.Duration // running transfers may finish for this long at shutdown (default 30s)
}

// DefaultTimeouts are the values zero fields take. The defaults table of
// cmd/ftpsgate holds the same (a test there keeps them equal).
//
// DataIdle: a stalled transfer holds a passive port (20 by default), a
// backend data connection and its buffers, so the gateway lets go sooner
// than its backends (vsftpd's data_connection_timeout is 5m, ProFTPD's
// TimeoutStalled 1h); two minutes without a single byte is past any live
// client's or backend's pause (a backend that prepares a file before
// sending it is the one that comes near).
var DefaultTimeouts = Timeouts{
	Idle:          5 * time.Minute,
	Login:         time.Minute,
	Connect:       10 * time.Second,
	Handshake:     10 * time.Second,
	DataAccept:    30 * time.Second,
	DataIdle:      2 * time.Minute,
	ShutdownGrace: 30 * time.Second,
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (t Timeouts) idle() time.Duration { return orDefault(t.Idle, DefaultTimeouts.Idle) }
func (t Timeouts) login() time.Duration {
	return min(orDefault(t.Login, DefaultTimeouts.Login), t.idle())
}
func (t Timeouts) connect() time.Duration   { return orDefault(t.Connect, DefaultTimeouts.Connect) }
func (t Timeouts) handshake() time.Duration { return orDefault(t.Handshake, DefaultTimeouts.Handshake) }
func (t Timeouts) dataAccept() time.Duration {
	return orDefault(t.DataAccept, DefaultTimeouts.DataAccept)
}
func (t Timeouts) dataIdle() time.Duration { return orDefault(t.DataIdle, DefaultTimeouts.DataIdle) }

// Grace is the shutdown grace period.
func (t Timeouts) Grace() time.Duration {
	return orDefault(t.ShutdownGrace, DefaultTimeouts.ShutdownGrace)
}

// Config is everything the session engine needs.
type Config struct {
	Listeners []Listener
	TLS       policy.TLSConfig
	// Backend is the one backend, "default", when Backends is empty.
	Backend Backend
	// Backends, when set, are several named backends (Backend must then be
	// left empty); Pools group equivalent ones and Routing chooses one per
	// session (see upstreams.go).
	Backends []Backend
	Pools    []upstream.Pool
	Routing  Routing
	Passive  nat.Config
	// ActiveEnabled allows PORT/EPRT from clients.
	ActiveEnabled bool
	// Login decides anonymous logins and SITE commands.
	Login policy.LoginPolicy
	// Limits are the connection, command and bandwidth limits.
	Limits policy.Limits
	// Bans configures automatic bans.
	Bans     policy.BanConfig
	Timeouts Timeouts
	// Greeting is the text of the gateway's 220. Default "ftpsgate ready".
	Greeting string
	// OwnAddrs are the other addresses this process listens on (the admin
	// API): a backend may not name their ports as data ports. The
	// listeners' bound addresses and the passive range are added by Start.
	OwnAddrs []netip.AddrPort
	// Hash: which transfers get a SHA-256 in their log line (transfers.hash).
	Hash HashMode
	// HashCommandMaxSize bounds the bytes the gateway reads from the
	// backend to answer HASH or XSHA256 itself (when the backend does not
	// answer HASH with SHA-256) (transfers.hash_command_max_size). 0:
	// DefaultHashCommandMaxSize; negative: HASH is only relayed.
	HashCommandMaxSize int64
	// Filters, when set, adds filters to every file transfer (cmd: the
	// inspect section; tests).
	Filters func(filter.Meta) []filter.Filter
	// HoldDownloads: a download that Filters inspects is read whole into
	// a hold.Buffer, and released to the client only once every filter
	// has judged it clean (inspect.downloads: hold). Off: its bytes reach
	// the client as they are inspected, and a block cuts it (426).
	HoldDownloads bool
	// Hold bounds a held download (inspect.hold).
	Hold hold.Config
}

func (c Config) greeting() string {
	if c.Greeting == "" {
		return "ftpsgate ready"
	}
	return c.Greeting
}

// Validate checks the configuration. Each problem is a *confkey.Error
// naming its configuration key ("backend.address"); several are joined with
// errors.Join (walk them with confkey.List).
func (c Config) Validate() error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, confkey.Under(key, err))
		}
	}
	if len(c.Listeners) == 0 {
		errs = append(errs, confkey.Errorf("listeners", "at least one listener is required"))
	}
	names := map[string]bool{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		if l.Name == "" {
			add(key+".name", errors.New("must be set"))
		} else if names[l.Name] {
			add(key+".name", fmt.Errorf("duplicate listener name %q", l.Name))
		}
		names[l.Name] = true
		add(key+".address", checkHostPort(l.Address))
		if l.TLSOverride.MinVersion != 0 {
			add(key, c.TLS.With(l.TLSOverride).Validate())
		}
		if l.ProxyProtocol.Enabled && len(l.ProxyProtocol.Trusted) == 0 {
			add(key+".proxy_protocol.trusted", errors.New("at least one trusted network is required when enabled"))
		}
		switch l.TLS {
		case TLSExplicit:
		case TLSImplicit:
			if l.AllowCleartext {
				add(key+".require_tls", errors.New("false only applies to explicit listeners (an implicit listener is TLS from the first byte)"))
			}
		default:
			add(key+".tls", fmt.Errorf("%s is not allowed on a listener (want explicit or implicit)", l.TLS))
		}
	}
	errs = append(errs, c.checkAddressClashes()...)
	errs = append(errs, c.validateBackends()...)
	add("tls", c.TLS.Validate())
	add("passive", c.Passive.Validate())
	add("limits", c.Limits.Validate())
	add("bans", c.Bans.Validate())
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"timeouts.idle", c.Timeouts.Idle}, {"timeouts.login", c.Timeouts.Login}, {"timeouts.connect", c.Timeouts.Connect},
		{"timeouts.handshake", c.Timeouts.Handshake}, {"timeouts.data_accept", c.Timeouts.DataAccept},
		{"timeouts.data_idle", c.Timeouts.DataIdle}, {"timeouts.shutdown_grace", c.Timeouts.ShutdownGrace},
	} {
		if t.d < 0 {
			add(t.key, fmt.Errorf("%s is negative", t.d))
		}
	}
	return errors.Join(errs...)
}

func checkHostPort(addr string) error {
	if addr == "" {
		return errors.New("must be set (host:port)")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
