package audit

import (
	"errors"
	"net"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// Syslog transports (SyslogConfig.Network).
const (
	SyslogUDP = "udp" // RFC 5426: one message per datagram
	SyslogTCP = "tcp" // RFC 6587 octet counting: "LEN SP MSG"
	SyslogTLS = "tls" // RFC 5425: octet counting inside TLS
)

// Message formats (SyslogConfig.Format).
const (
	SyslogJSON = "json" // MSG is the record as one JSON object
	SyslogCEF  = "cef"  // MSG is an ArcSight CEF line (cef.go)
)

// Syslog severities (RFC 5424 section 6.2.1) the sink uses.
const (
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

// tlsSettle is how long a new TLS connection waits for the receiver's
// refusal of the client certificate (TLS 1.3 sends it after the client's
// handshake is over).
const tlsSettle = 100 * time.Millisecond

// FacilityLocal0 is the default facility (16, local0).
const FacilityLocal0 = 16

// syslogAppName is the APP-NAME of every message.
const syslogAppName = "ftpsgate"

// truncSD is the STRUCTURED-DATA of a message that was cut at
// max_message: its original length. 32473 is the private enterprise number RFC 5612
// reserves for documentation.
const truncSD = "truncated@32473"

// Defaults of SyslogConfig.
const (
	DefaultSyslogNetwork      = SyslogTLS
	DefaultSyslogFormat       = SyslogJSON
	DefaultSyslogDialTimeout  = 10 * time.Second
	DefaultSyslogWriteTimeout = 10 * time.Second
	DefaultSyslogBackoffMin   = 200 * time.Millisecond
	DefaultSyslogBackoffMax   = 30 * time.Second
	// DefaultSyslogMaxUDP is the longest UDP message (RFC 5426 section
	// 3.2: receivers SHOULD take 2048 octets); longer ones are cut there,
	// marked and counted.
	DefaultSyslogMaxUDP = 2048
	// DefaultSyslogMaxStream is the longest TCP or TLS message: rsyslog's
	// default maxMessageSize (8 KiB), past which it cuts a message without
	// a mark; raise both together.
	DefaultSyslogMaxStream = 8192
	// DefaultSyslogResend is how many of the last messages written on a
	// TCP or TLS connection are written again on the next connection after
	// it broke: syslog has no acknowledgement, so what sat in the socket
	// buffers when the receiver went away is otherwise lost. A receiver may
	// see such a record twice (same id).
	DefaultSyslogResend = 256
)

// SyslogConfig configures the syslog sink (keys under audit.syslog). The
// zero value of each field but Address takes its default.
type SyslogConfig struct {
	Network  string // udp, tcp, tls (key network; default tls)
	Address  string // host:port of the receiver (key address; required)
	Format   string // json or cef (key format; default json)
	Facility int    // 0..23 (key facility; default 16, local0); -1 is kern (0)
	Hostname string // HOSTNAME of the messages (key hostname; default os.Hostname())

	// TLS (network tls): the CA file that verifies the receiver (key
	// ca_file; empty: the system roots), the name checked in its
	// certificate (key server_name; default the address's host), and an
	// optional client certificate and key (keys cert_file, key_file).
	CAFile, ServerName, CertFile, KeyFile string
	// InsecureSkipVerify turns the receiver's certificate check off (key
	// insecure_skip_verify). Weakens security.
	InsecureSkipVerify bool

	DialTimeout  time.Duration // key dial_timeout; default 10s
	WriteTimeout time.Duration // key write_timeout; default 10s (a batch)
	BackoffMin   time.Duration // key backoff_min; default 200ms
	BackoffMax   time.Duration // key backoff_max; default 30s
	// MaxMessage is the longest message (key max_message; default 2048
	// on udp, 8192 on tcp and tls): a longer one is cut there, marked
	// with the STRUCTURED-DATA [truncated@32473 length="N"] (its whole
	// length) and counted (Truncated), never cut silently by the
	// receiver. The receiver must take messages this long (rsyslog:
	// global(maxMessageSize=...)).
	MaxMessage int
	Resend     int // key resend_on_reconnect; default 256, -1 none

	// Version is the gateway's version, in CEF headers.
	Version string
}

func (c *SyslogConfig) network() string { return remoteOr(c.Network, DefaultSyslogNetwork) }
func (c *SyslogConfig) format() string  { return remoteOr(c.Format, DefaultSyslogFormat) }
func (c *SyslogConfig) facility() int {
	switch {
	case c.Facility == 0:
		return FacilityLocal0
	case c.Facility < 0:
		return 0
	}
	return c.Facility
}
func (c *SyslogConfig) dialTimeout() time.Duration {
	return remoteOrDur(c.DialTimeout, DefaultSyslogDialTimeout)
}
func (c *SyslogConfig) writeTimeout() time.Duration {
	return remoteOrDur(c.WriteTimeout, DefaultSyslogWriteTimeout)
}
func (c *SyslogConfig) backoffMin() time.Duration {
	return remoteOrDur(c.BackoffMin, DefaultSyslogBackoffMin)
}
func (c *SyslogConfig) backoffMax() time.Duration {
	return remoteOrDur(c.BackoffMax, DefaultSyslogBackoffMax)
}
func (c *SyslogConfig) maxMessage() int {
	switch {
	case c.MaxMessage > 0:
		return c.MaxMessage
	case c.network() == SyslogUDP:
		return DefaultSyslogMaxUDP
	}
	return DefaultSyslogMaxStream
}
func (c *SyslogConfig) resend() int {
	switch {
	case c.Resend < 0:
		return 0
	case c.Resend == 0:
		return DefaultSyslogResend
	}
	return c.Resend
}

// Validate checks c; problems name their key relative to audit.syslog.
func (c *SyslogConfig) Validate() error {
	var errs []error
	switch c.network() {
	case SyslogUDP, SyslogTCP, SyslogTLS:
	default:
		errs = append(errs, confkey.Errorf("network", "%q: want udp, tcp or tls", c.Network))
	}
	switch c.format() {
	case SyslogJSON, SyslogCEF:
	default:
		errs = append(errs, confkey.Errorf("format", "%q: want json or cef", c.Format))
	}
	if c.Address == "" {
		errs = append(errs, confkey.Errorf("address", "required (host:port of the syslog receiver)"))
	} else if _, _, err := net.SplitHostPort(c.Address); err != nil {
		errs = append(errs, confkey.New("address", err))
	}
	if c.Facility > 23 {
		errs = append(errs, confkey.Errorf("facility", "%d: want 0..23", c.Facility))
	}
	if c.Hostname != "" && !printUSASCII(c.Hostname, 255) {
		errs = append(errs, confkey.Errorf("hostname", "%q: want 1..255 printable ASCII characters", c.Hostname))
	}
	if c.network() != SyslogTLS {
		for k, v := range map[string]string{"ca_file": c.CAFile, "cert_file": c.CertFile, "key_file": c.KeyFile, "server_name": c.ServerName} {
			if v != "" {
				errs = append(errs, confkey.Errorf(k, "set but network is %s (only tls uses it)", c.network()))
			}
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, confkey.Errorf("cert_file", "cert_file and key_file go together"))
	}
	for k, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "write_timeout": c.WriteTimeout, "backoff_min": c.BackoffMin, "backoff_max": c.BackoffMax} {
		if d < 0 {
			errs = append(errs, confkey.Errorf(k, "%s is negative", d))
		}
	}
	if c.backoffMax() < c.backoffMin() {
		errs = append(errs, confkey.Errorf("backoff_max", "%s is below backoff_min %s", c.backoffMax(), c.backoffMin()))
	}
	if c.MaxMessage != 0 && c.network() == SyslogUDP && (c.MaxMessage < 480 || c.MaxMessage > 65000) {
		errs = append(errs, confkey.Errorf("max_message", "%d: want 480..65000 on udp (RFC 5426)", c.MaxMessage))
	}
	if c.MaxMessage != 0 && c.network() != SyslogUDP && (c.MaxMessage < 480 || c.MaxMessage > 16<<20) {
		errs = append(errs, confkey.Errorf("max_message", "%d: want 480..16777216", c.MaxMessage))
	}
	return errors.Join(errs...)
}
