package tunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Defaults, shared by both ends where they apply.
const (
	DefaultMaxStreams       = 256
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultKeepAlive        = 15 * time.Second
	DefaultWaitForAgent     = 5 * time.Second
	DefaultDialTimeout      = 10 * time.Second
	DefaultBackoffMin       = 500 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
	// DefaultShutdownGrace is the gateway's timeouts.shutdown_grace default.
	DefaultShutdownGrace = 30 * time.Second

	// windowSize bounds what one stream buffers unread (yamux's receive
	// window): big enough for a LAN's bandwidth-delay product, small enough
	// that max_streams of them stay bounded.
	windowSize = 1 << 20
)

// closeTimeout: how long a half-closed stream waits for the other side
// before it is reset (a variable for the tests).
var closeTimeout = 30 * time.Second

// HubConfig is the gateway's agent listener (the agents: section).
type HubConfig struct {
	// Certificate is the gateway's certificate for the agent listener.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Groups maps each agent group to the SHA-256 pins of the
	// SubjectPublicKeyInfo of the agents allowed to join it.
	Groups map[string][][32]byte
	// MaxStreams bounds the streams open on one agent (0: DefaultMaxStreams).
	MaxStreams int
	// HandshakeTimeout bounds an agent's TLS handshake and hello.
	HandshakeTimeout time.Duration
	// KeepAlive is the interval of yamux pings; a dead agent is dropped
	// after a missed one.
	KeepAlive time.Duration
	// WaitForAgent is how long a dial waits for an agent of the group to be
	// connected (or to have a free stream) before it fails.
	WaitForAgent time.Duration
}

func (c *HubConfig) maxStreams() int { return orInt(c.MaxStreams, DefaultMaxStreams) }
func (c *HubConfig) handshake() time.Duration {
	return orDur(c.HandshakeTimeout, DefaultHandshakeTimeout)
}
func (c *HubConfig) keepAlive() time.Duration { return orDur(c.KeepAlive, DefaultKeepAlive) }
func (c *HubConfig) wait() time.Duration      { return orDur(c.WaitForAgent, DefaultWaitForAgent) }

// Validate checks the configuration; errors name keys relative to the
// agents: section.
func (c *HubConfig) Validate() error {
	var errs []error
	if c.GetCertificate == nil {
		errs = append(errs, confkey.New("cert_file", errors.New("the agent listener needs a certificate")))
	}
	if len(c.Groups) == 0 {
		errs = append(errs, confkey.New("groups", errors.New("no agent groups")))
	}
	names := make([]string, 0, len(c.Groups))
	for name := range c.Groups {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !isToken(name) {
			errs = append(errs, confkey.Errorf("groups."+name, "a group name is 1 to 64 letters, digits, '.', '_' or '-'"))
		}
		if len(c.Groups[name]) == 0 {
			errs = append(errs, confkey.Errorf("groups."+name+".pins", "no pins: no agent could join the group"))
		}
	}
	if c.MaxStreams < 0 {
		errs = append(errs, confkey.Errorf("max_streams", "must not be negative"))
	}
	for key, d := range map[string]time.Duration{"handshake_timeout": c.HandshakeTimeout, "keepalive": c.KeepAlive, "wait_for_agent": c.WaitForAgent} {
		if d < 0 {
			errs = append(errs, confkey.Errorf(key, "must not be negative"))
		}
	}
	return errors.Join(errs...)
}

// AgentConfig is the agent's side (agent.yaml).
type AgentConfig struct {
	// Gateways are the gateways' agent listeners ("host:port"), tried in
	// turn.
	Gateways []string
	// ServerName is checked against the gateway's certificate when
	// GatewayCA is set (default: the host of the address dialled).
	ServerName string
	// Certificate is the agent's client certificate.
	Certificate tls.Certificate
	// GatewayPins: the gateway's certificate must hash (SPKI SHA-256) to
	// one of them. GatewayCA: it must chain to this pool. At least one is
	// required; with both, both must hold.
	GatewayPins [][32]byte
	GatewayCA   *x509.CertPool
	// Group is the group the agent joins; Name names it in logs.
	Group, Name string
	// Allow is where the agent connects; empty: nowhere.
	Allow AllowList
	// MaxStreams bounds concurrent streams (0: DefaultMaxStreams).
	MaxStreams int
	// Source, when valid, is the local address of the agent's connections
	// to the destinations (a multi-homed host whose server admits one
	// address); otherwise the system chooses.
	Source netip.Addr
	// DialTimeout bounds each local connection (0: DefaultDialTimeout).
	DialTimeout time.Duration
	// HandshakeTimeout bounds the connection to the gateway, TLS and hello.
	HandshakeTimeout time.Duration
	// KeepAlive is the yamux ping interval.
	KeepAlive time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnections
	// (doubling, with jitter).
	BackoffMin, BackoffMax time.Duration
	// ShutdownGrace is how long streams relaying at shutdown may go on
	// (0: DefaultShutdownGrace); new streams are refused meanwhile.
	ShutdownGrace time.Duration
}

func (c *AgentConfig) maxStreams() int { return orInt(c.MaxStreams, DefaultMaxStreams) }
func (c *AgentConfig) dialTimeout() time.Duration {
	return orDur(c.DialTimeout, DefaultDialTimeout)
}
func (c *AgentConfig) handshake() time.Duration {
	return orDur(c.HandshakeTimeout, DefaultHandshakeTimeout)
}
func (c *AgentConfig) keepAlive() time.Duration  { return orDur(c.KeepAlive, DefaultKeepAlive) }
func (c *AgentConfig) backoffMin() time.Duration { return orDur(c.BackoffMin, DefaultBackoffMin) }
func (c *AgentConfig) shutdownGrace() time.Duration {
	return orDur(c.ShutdownGrace, DefaultShutdownGrace)
}
func (c *AgentConfig) backoffMax() time.Duration {
	return max(orDur(c.BackoffMax, DefaultBackoffMax), c.backoffMin())
}

// Validate checks the configuration; errors name agent.yaml's keys.
func (c *AgentConfig) Validate() error {
	var errs []error
	if len(c.Gateways) == 0 {
		errs = append(errs, confkey.Errorf("gateways", "no gateway address"))
	}
	if c.Certificate.PrivateKey == nil {
		errs = append(errs, confkey.Errorf("cert_file", "the agent needs a client certificate and key"))
	}
	if len(c.GatewayPins) == 0 && c.GatewayCA == nil {
		errs = append(errs, confkey.Errorf("gateway_pins", "set gateway_pins or gateway_ca_file: the agent must know the gateway"))
	}
	if !isToken(c.Group) {
		errs = append(errs, confkey.Errorf("group", "a group name is 1 to 64 letters, digits, '.', '_' or '-'"))
	}
	if c.Name != "" && !isToken(c.Name) {
		errs = append(errs, confkey.Errorf("name", "1 to 64 letters, digits, '.', '_' or '-'"))
	}
	if c.MaxStreams < 0 {
		errs = append(errs, confkey.Errorf("max_streams", "must not be negative"))
	}
	if s := c.Source; s.IsValid() && (s.Zone() != "" || s.Is4In6() || s.IsUnspecified() || s.IsMulticast()) {
		errs = append(errs, confkey.Errorf("source_address", "%s is not a unicast address of this host (no zone, not IPv4-mapped)", s))
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 {
		errs = append(errs, confkey.Errorf("backoff", "must not be negative"))
	}
	if c.ShutdownGrace < 0 {
		errs = append(errs, confkey.Errorf("shutdown_grace", "must not be negative"))
	}
	return errors.Join(errs...)
}

func muxConfig(keepAlive time.Duration, backlog int) *yamux.Config {
	c := yamux.DefaultConfig()
	c.EnableKeepAlive = true
	c.KeepAliveInterval = keepAlive
	c.ConnectionWriteTimeout = keepAlive
	c.MaxStreamWindowSize = windowSize
	c.StreamOpenTimeout = keepAlive
	c.StreamCloseTimeout = closeTimeout
	c.AcceptBacklog = backlog
	c.LogOutput = io.Discard
	return c
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// hello is the agent's first line after the handshake.
func helloLine(group, name string) string { return fmt.Sprintf("AGENT %s %s", group, name) }
