package icap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnavailable: no configured server could be used.
var ErrUnavailable = errors.New("icap: no ICAP server available")

// Options is what a service's OPTIONS reply says (RFC 3507 section 4.10).
type Options struct {
	Methods        []string // REQMOD, RESPMOD
	ISTag          string
	Preview        int  // bytes the server wants first; -1: no Preview header
	Allow204       bool // the server can answer 204 outside a preview
	MaxConnections int  // 0: not said
	TTL            time.Duration
	Service        string
}

// Supports reports whether the service offers method.
func (o Options) Supports(method string) bool {
	for _, m := range o.Methods {
		if strings.EqualFold(m, method) {
			return true
		}
	}
	return false
}

// defaultOptionsTTL caches an OPTIONS reply without Options-TTL.
const defaultOptionsTTL = time.Hour

// Client speaks ICAP to the configured servers: a small pool of idle
// connections and a cached OPTIONS reply per server, failover in order.
// It is safe for concurrent use.
type Client struct {
	cfg     Config
	servers []*server
	dialer  net.Dialer
}

type server struct {
	Server
	mu         sync.Mutex
	idle       []*conn
	opts       *Options
	optsExpire time.Time
	downUntil  time.Time
	closed     bool
}

// conn is one connection to a server, with deadlines on every read and
// write.
type conn struct {
	nc      net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	timeout time.Duration
	reused  bool
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.nc.Read(p)
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.nc.Write(p)
}

// New checks cfg and returns its client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, dialer: net.Dialer{Timeout: cfg.timeout()}}
	for _, s := range cfg.Servers {
		c.servers = append(c.servers, &server{Server: s})
	}
	return c, nil
}

// Close closes the idle connections; a scan running keeps its own.
func (c *Client) Close() error {
	for _, s := range c.servers {
		s.mu.Lock()
		idle := s.idle
		s.idle, s.closed = nil, true
		s.mu.Unlock()
		for _, cn := range idle {
			_ = cn.nc.Close()
		}
	}
	return nil
}

// Idle counts the idle connections kept for server i (tests, metrics).
func (c *Client) Idle(i int) int {
	s := c.servers[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.idle)
}

func (c *Client) dial(ctx context.Context, s *server) (*conn, error) {
	nc, err := c.dialer.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	return c.wrap(nc), nil
}

func (c *Client) wrap(nc net.Conn) *conn {
	cn := &conn{nc: nc, timeout: c.cfg.timeout()}
	cn.br = bufio.NewReaderSize(cn, 16<<10)
	cn.bw = bufio.NewWriterSize(cn, 32<<10)
	return cn
}

// get takes an idle connection that is still open, or dials.
func (c *Client) get(ctx context.Context, s *server) (*conn, error) {
	for {
		s.mu.Lock()
		if len(s.idle) == 0 {
			s.mu.Unlock()
			return c.dial(ctx, s)
		}
		cn := s.idle[len(s.idle)-1]
		s.idle = s.idle[:len(s.idle)-1]
		s.mu.Unlock()
		if alive(cn) {
			cn.reused = true
			return cn, nil
		}
		_ = cn.nc.Close()
	}
}

// alive reports whether an idle connection is still open: a server that
// closed it (or sent bytes nobody asked for) makes it unusable.
func alive(cn *conn) bool {
	if cn.br.Buffered() > 0 {
		return false
	}
	if err := cn.nc.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	var b [1]byte
	_, err := cn.nc.Read(b[:])
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// put keeps a connection whose last reply was read completely.
func (c *Client) put(s *server, cn *conn, opts *Options) {
	limit := c.cfg.maxIdle()
	if opts != nil && opts.MaxConnections > 0 && opts.MaxConnections < limit {
		limit = opts.MaxConnections
	}
	s.mu.Lock()
	if !s.closed && len(s.idle) < limit {
		s.idle = append(s.idle, cn)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	_ = cn.nc.Close()
}

// Options returns server i's OPTIONS, from the cache while it holds.
func (c *Client) Options(ctx context.Context, i int) (Options, error) {
	s := c.servers[i]
	o, err := c.options(ctx, s)
	if err != nil {
		return Options{}, err
	}
	return *o, nil
}

func (c *Client) options(ctx context.Context, s *server) (*Options, error) {
	s.mu.Lock()
	if s.opts != nil && time.Now().Before(s.optsExpire) {
		o := s.opts
		s.mu.Unlock()
		return o, nil
	}
	s.mu.Unlock()
	cn, err := c.get(ctx, s)
	if err != nil {
		return nil, err
	}
	o, keep, err := c.askOptions(cn, s)
	if err != nil && cn.reused {
		// A pooled connection the server closed meanwhile: once more, fresh.
		_ = cn.nc.Close()
		if cn, err = c.dial(ctx, s); err != nil {
			return nil, err
		}
		o, keep, err = c.askOptions(cn, s)
	}
	if err != nil {
		_ = cn.nc.Close()
		return nil, err
	}
	if keep {
		c.put(s, cn, o)
	} else {
		_ = cn.nc.Close()
	}
	s.mu.Lock()
	s.opts, s.optsExpire = o, time.Now().Add(o.TTL)
	s.mu.Unlock()
	return o, nil
}

// askOptions sends OPTIONS on cn and reads the reply.
func (c *Client) askOptions(cn *conn, s *server) (*Options, bool, error) {
	host := s.host()
	fmt.Fprintf(cn.bw, "OPTIONS %s ICAP/1.0\r\nHost: %s\r\nUser-Agent: ftpsgate\r\nEncapsulated: null-body=0\r\n\r\n", s.URL(), host)
	if err := cn.bw.Flush(); err != nil {
		return nil, false, fmt.Errorf("sending OPTIONS: %w", err)
	}
	resp, err := readResponse(cn.br)
	if err != nil {
		return nil, false, fmt.Errorf("reading the OPTIONS reply: %w", unexpected(err))
	}
	if _, err := readEncapsulated(cn.br, resp, maxBodyBytes); err != nil {
		return nil, false, fmt.Errorf("reading the OPTIONS reply: %w", err)
	}
	if resp.Status != 200 {
		return nil, false, fmt.Errorf("%w: OPTIONS answered %d %s", ErrProtocol, resp.Status, printable(resp.Reason, 80))
	}
	h := resp.Header
	o := &Options{Preview: -1, ISTag: h.Get("Istag"), Service: h.Get("Service"), TTL: defaultOptionsTTL}
	for m := range strings.SplitSeq(h.Get("Methods"), ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Methods = append(o.Methods, strings.ToUpper(m))
		}
	}
	if v := h.Get("Preview"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			o.Preview = n
		}
	}
	for a := range strings.SplitSeq(h.Get("Allow"), ",") {
		if strings.TrimSpace(a) == "204" {
			o.Allow204 = true
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Max-Connections"))); err == nil && n > 0 {
		o.MaxConnections = n
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Options-Ttl"))); err == nil && n > 0 {
		o.TTL = time.Duration(n) * time.Second
	}
	keep := !strings.EqualFold(h.Get("Connection"), "close")
	return o, keep, nil
}

// markDown skips s for a while after a failure (unless all are down).
func (c *Client) markDown(s *server, err error) {
	s.mu.Lock()
	s.downUntil = time.Now().Add(DefaultDownTime)
	s.opts = nil
	s.mu.Unlock()
	if c.cfg.Hooks.ServerError != nil {
		c.cfg.Hooks.ServerError(s.URL(), err)
	}
}

// order lists the servers to try: those up first, in their order, then
// those marked down.
func (c *Client) order() []*server {
	now := time.Now()
	var up, down []*server
	for _, s := range c.servers {
		s.mu.Lock()
		d := now.Before(s.downUntil)
		s.mu.Unlock()
		if d {
			down = append(down, s)
		} else {
			up = append(up, s)
		}
	}
	return append(up, down...)
}

// Policy is the part of Config an inspection policy chosen per user may
// change; the servers, timeouts and sizes stay the client's.
type Policy struct {
	Directions  Directions
	OnError     Action
	OverMaxSize Action
	Partial     PartialMode
}

// Policy returns the client's own settings of that part.
func (c *Client) Policy() Policy {
	return Policy{Directions: c.cfg.Directions, OnError: c.cfg.OnError, OverMaxSize: c.cfg.OverMaxSize, Partial: c.cfg.Partial}
}

// WithPolicy returns a client that scans with p's settings over c's
// servers: it shares c's connections, cached OPTIONS and failover state.
// Close the client New returned, not this one.
func (c *Client) WithPolicy(p Policy) *Client {
	cfg := c.cfg
	cfg.Directions, cfg.OnError, cfg.OverMaxSize, cfg.Partial = p.Directions, p.OnError, p.OverMaxSize, p.Partial
	return &Client{cfg: cfg, servers: c.servers, dialer: c.dialer}
}
