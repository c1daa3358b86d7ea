package icap

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/confkey"
)

// DefaultPort is ICAP's port (RFC 3507 section 4.2).
const DefaultPort = "1344"

// The defaults of Config's zero fields.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxSize  = 100 << 20 // bytes
	DefaultMaxIdle  = 4         // idle connections kept per server
	DefaultDownTime = 10 * time.Second
)

// Action is what happens to a transfer the scanner could not judge.
type Action int

// The actions. The zero value, Default, is each field's default: Block
// for Config.OnError (the safe one), OnError for Config.OverMaxSize.
const (
	Default Action = iota
	Block          // veto: 451 (scanner failed) or 550 (too large)
	Allow          // let the transfer pass unscanned
	// OnError (only for Config.OverMaxSize): do what Config.OnError says.
	OnError
)

// ParseAction parses "block", "allow" or (when onError is accepted)
// "on_error".
func ParseAction(s string, onError bool) (Action, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "block":
		return Block, nil
	case "allow":
		return Allow, nil
	case "on_error":
		if onError {
			return OnError, nil
		}
	}
	if onError {
		return 0, fmt.Errorf("%q is not an action (want block, allow or on_error)", s)
	}
	return 0, fmt.Errorf("%q is not an action (want block or allow)", s)
}

func (a Action) String() string {
	switch a {
	case Default:
		return "default"
	case Block:
		return "block"
	case Allow:
		return "allow"
	case OnError:
		return "on_error"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Directions says which transfers are scanned.
type Directions int

// The direction sets. The zero value scans both.
const (
	Both      Directions = iota // uploads (REQMOD) and downloads (RESPMOD)
	Uploads                     // STOR, STOU, APPE only
	Downloads                   // RETR only
)

// ParseDirections parses "both", "uploads" or "downloads".
func ParseDirections(s string) (Directions, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "both", "":
		return Both, nil
	case "uploads", "upload":
		return Uploads, nil
	case "downloads", "download":
		return Downloads, nil
	}
	return 0, fmt.Errorf("%q is not a direction set (want both, uploads or downloads)", s)
}

func (d Directions) String() string {
	switch d {
	case Both:
		return "both"
	case Uploads:
		return "uploads"
	case Downloads:
		return "downloads"
	}
	return fmt.Sprintf("Directions(%d)", int(d))
}

// PartialMode says what happens to a resumed (REST) or appended (APPE)
// transfer, of whose file the scanner would see only a part.
type PartialMode int

// The partial modes. The zero value blocks: a file split across a STOR and
// APPEs, or downloaded in ranges, is otherwise never scanned whole.
const (
	PartialBlock PartialMode = iota // refuse it (550) at its first byte
	PartialScan                     // scan the part that passes
)

// ParsePartialMode parses "block" or "scan".
func ParsePartialMode(s string) (PartialMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "block", "":
		return PartialBlock, nil
	case "scan":
		return PartialScan, nil
	}
	return 0, fmt.Errorf("%q is not a partial transfer mode (want block or scan)", s)
}

func (m PartialMode) String() string {
	switch m {
	case PartialBlock:
		return "block"
	case PartialScan:
		return "scan"
	}
	return fmt.Sprintf("PartialMode(%d)", int(m))
}

// Server is one ICAP service: icap://host[:port]/service.
type Server struct {
	Addr    string // host:port
	Service string // the path, with its leading "/", and query if any
}

// URL is the service's ICAP URI, as it goes on a request line.
func (s Server) URL() string { return "icap://" + s.Addr + s.Service }

func (s Server) String() string { return s.URL() }

// ParseServer parses icap://host[:port]/service (port 1344 when absent).
func ParseServer(s string) (Server, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return Server{}, fmt.Errorf("%q: %w", s, err)
	}
	if u.Scheme != "icap" {
		return Server{}, fmt.Errorf("%q: the scheme must be icap:// (icaps is not supported)", s)
	}
	if u.Hostname() == "" {
		return Server{}, fmt.Errorf("%q: no host", s)
	}
	if u.User != nil || u.Fragment != "" {
		return Server{}, fmt.Errorf("%q: user information and fragments are not allowed", s)
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return Server{}, fmt.Errorf("%q: bad port %q", s, port)
	}
	svc := u.EscapedPath()
	if svc == "" || svc == "/" {
		return Server{}, fmt.Errorf("%q: no service name (icap://host:port/service)", s)
	}
	if u.RawQuery != "" {
		svc += "?" + u.RawQuery
	}
	if strings.ContainsAny(svc, " \r\n\t") {
		return Server{}, fmt.Errorf("%q: blanks in the service", s)
	}
	return Server{Addr: net.JoinHostPort(u.Hostname(), port), Service: svc}, nil
}

// Preview modes of Config.Preview.
const (
	PreviewAuto = 0  // send the preview the server's OPTIONS asks for
	PreviewOff  = -1 // never send a preview
)

// ParsePreview parses "auto", "off" or a size in bytes.
func ParsePreview(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto", "":
		return PreviewAuto, nil
	case "off":
		return PreviewOff, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a preview size (want auto, off or a number of bytes)", s)
	}
	if n == 0 {
		return PreviewOff, nil
	}
	return n, nil
}

// Config is the ICAP inspection (keys under inspect.icap). The zero value
// with Servers set is usable: the other fields fall back to the defaults.
type Config struct {
	// Servers (servers): the ICAP services, tried in order; the next one
	// takes over when one cannot be reached (before a transfer's bytes
	// start to stream: a scan in progress is not moved).
	Servers []Server
	// Timeout (timeout) bounds every connect, read and write, and the wait
	// for the verdict after the last byte. 0: DefaultTimeout.
	Timeout time.Duration
	// Preview (preview): PreviewAuto (0, the default) sends the preview
	// the server's OPTIONS asks for, PreviewOff none, n > 0 at most n
	// bytes (never more than the server asks for).
	Preview int
	// MaxSize (max_size) in bytes: a transfer larger than this is not
	// scanned to its end; OverMaxSize decides. 0: DefaultMaxSize.
	MaxSize int64
	// OverMaxSize (over_max_size): what happens to such a transfer; the
	// default does what OnError says.
	OverMaxSize Action
	// OnError (on_error): the scanner unreachable or failing. Block (the
	// default) vetoes with 451; Allow lets the transfer pass unscanned.
	// Only Default, Block and Allow are valid.
	OnError Action
	// Directions (directions): which transfers are scanned (default both).
	Directions Directions
	// Partial (partial_transfers): a resumed or appended transfer.
	// PartialBlock (the default) refuses it with 550 before its first byte
	// passes (an APPE's file stays as it was); PartialScan scans the part
	// that passes as if it were the file.
	Partial PartialMode
	// MaxIdle (max_idle_connections): idle connections kept per server,
	// never more than the server's Max-Connections. 0: DefaultMaxIdle.
	MaxIdle int
	// Hooks are the metrics and alert callbacks (not configuration keys).
	Hooks Hooks
}

// Hooks are called as scans end and servers fail; nil fields are skipped.
// They run on the scan's goroutine: they must not block.
type Hooks struct {
	// Done reports each scan's result (bytes, verdict, latency, error).
	Done func(Report)
	// ServerError reports a server that could not be used (connect,
	// OPTIONS, or a request that failed), before failover.
	ServerError func(server string, err error)
}

func (c *Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Config) maxSize() int64 {
	if c.MaxSize > 0 {
		return c.MaxSize
	}
	return DefaultMaxSize
}

func (c *Config) maxIdle() int {
	if c.MaxIdle > 0 {
		return c.MaxIdle
	}
	return DefaultMaxIdle
}

// onError is the action for a scan that failed: Block or Allow.
func (c *Config) onError() Action {
	if c.OnError == Allow {
		return Allow
	}
	return Block
}

// overMaxSize is the action for a transfer past MaxSize: Block or Allow.
func (c *Config) overMaxSize() Action {
	switch c.OverMaxSize {
	case Block, Allow:
		return c.OverMaxSize
	}
	return c.onError()
}

// Validate checks the configuration; each problem is a *confkey.Error
// naming its key relative to inspect.icap.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, confkey.Errorf("servers", "at least one ICAP server is required"))
	}
	for i, s := range c.Servers {
		if _, _, err := net.SplitHostPort(s.Addr); err != nil || !strings.HasPrefix(s.Service, "/") {
			errs = append(errs, confkey.Errorf(fmt.Sprintf("servers[%d]", i), "not an ICAP service (icap://host:port/service)"))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, confkey.Errorf("timeout", "must not be negative"))
	}
	if c.Preview < PreviewOff {
		errs = append(errs, confkey.Errorf("preview", "must be auto, off or a number of bytes"))
	}
	if c.MaxSize < 0 {
		errs = append(errs, confkey.Errorf("max_size", "must not be negative"))
	}
	if c.OnError != Default && c.OnError != Block && c.OnError != Allow {
		errs = append(errs, confkey.Errorf("on_error", "must be block or allow"))
	}
	if c.OverMaxSize < Default || c.OverMaxSize > OnError {
		errs = append(errs, confkey.Errorf("over_max_size", "must be block, allow or on_error"))
	}
	if c.Directions < Both || c.Directions > Downloads {
		errs = append(errs, confkey.Errorf("directions", "must be both, uploads or downloads"))
	}
	if c.Partial != PartialBlock && c.Partial != PartialScan {
		errs = append(errs, confkey.Errorf("partial_transfers", "must be block or scan"))
	}
	if c.MaxIdle < 0 {
		errs = append(errs, confkey.Errorf("max_idle_connections", "must not be negative"))
	}
	return errors.Join(errs...)
}

// host is the Host header's value: the server's host, an IPv6 address in
// brackets.
func (s Server) host() string {
	h, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return s.Addr
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
