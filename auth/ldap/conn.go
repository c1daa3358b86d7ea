package ldap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// server is one directory URL, parsed.
type server struct {
	url  string
	addr string // host:port
	tls  bool   // ldaps://
	name string // the TLS server name
}

func parseServer(s string, serverName string) (server, error) {
	u, err := url.Parse(s)
	if err != nil {
		return server{}, err
	}
	srv := server{url: s, tls: u.Scheme == "ldaps", name: serverName}
	port := u.Port()
	if port == "" {
		port = goldap.DefaultLdapPort
		if srv.tls {
			port = goldap.DefaultLdapsPort
		}
	}
	srv.addr = net.JoinHostPort(u.Hostname(), port)
	if srv.name == "" {
		srv.name = u.Hostname()
	}
	return srv, nil
}

// conn is one connection to the directory. Every operation runs through
// do, which bounds it with a deadline on the socket (the operation timeout
// or ctx's deadline, whichever is first) and ends it at once when ctx ends;
// a connection whose operation failed on the network, or was cut, is bad
// and never reused.
type conn struct {
	raw     net.Conn // the socket under l (and under TLS): deadlines go here
	l       *goldap.Conn
	srv     string
	timeout time.Duration
	bad     atomic.Bool
}

// do runs f with the connection's deadline set from ctx and the operation
// timeout.
func (c *conn) do(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.raw.SetDeadline(time.Unix(1, 0)) })
	err := f()
	if !stop() {
		// ctx ended during f: the socket's deadline is in the past.
		c.bad.Store(true)
		if err == nil {
			err = ctx.Err()
		} else {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		return err
	}
	if err != nil && !isResult(err) {
		c.bad.Store(true)
	}
	if !c.bad.Load() {
		_ = c.raw.SetDeadline(time.Time{})
	}
	return err
}

// usable: not known bad, and go-ldap has not seen the connection end.
func (c *conn) usable() bool { return !c.bad.Load() && !c.l.IsClosing() }

func (c *conn) close() {
	c.bad.Store(true)
	_ = c.raw.Close() // ends go-ldap's reader at once
	_ = c.l.Close()
}

// isResult: err is an LDAP result the server sent (the connection is fine),
// not a network, timeout or protocol failure of the client.
func isResult(err error) bool {
	var le *goldap.Error
	if !errors.As(err, &le) {
		return false
	}
	// go-ldap's own codes (ErrorNetwork, ErrorUnexpectedResponse...) are
	// 200 and up; results from the server are below.
	return le.ResultCode < goldap.ErrorNetwork
}

// dial connects to srv: TCP, TLS for ldaps://, StartTLS if configured; all
// within the dial timeout and ctx.
func (p *Provider) dialOne(ctx context.Context, srv server) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.dialTimeout())
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", srv.addr)
	if err != nil {
		return nil, err
	}
	nc := raw
	if srv.tls {
		tc := tls.Client(raw, p.tlsConfig(srv.name))
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	l := goldap.NewConn(nc, srv.tls)
	l.Start()
	l.SetTimeout(p.cfg.timeout())
	c := &conn{raw: raw, l: l, srv: srv.url, timeout: p.cfg.dialTimeout()}
	if p.cfg.StartTLS {
		if err := c.do(ctx, func() error { return l.StartTLS(p.tlsConfig(srv.name)) }); err != nil {
			c.close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	c.timeout = p.cfg.timeout()
	return c, nil
}

// dial connects to the first server that answers, starting with the one
// that answered last.
func (p *Provider) dial(ctx context.Context) (*conn, error) {
	n := len(p.servers)
	first := int(p.preferred.Load())
	var errs []error
	for i := range n {
		k := (first + i) % n
		c, err := p.dialOne(ctx, p.servers[k])
		if err == nil {
			p.preferred.Store(int32(k))
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.servers[k].url, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// acquire takes one of the MaxConnections slots, within ctx.
func (p *Provider) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a free directory connection (max_connections %d): %w", cap(p.slots), context.Cause(ctx))
	}
}

// service returns a connection bound as the service account (or anonymous
// when there is none): an idle one from the pool, or a new one. Pooled
// connections only ever bind as the service account, so they keep that
// identity and are not bound again when taken.
func (p *Provider) service(ctx context.Context) (c *conn, pooled bool, err error) {
	if c := p.idle(); c != nil {
		return c, true, nil
	}
	c, err = p.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	if p.cfg.BindDN != "" {
		if err := c.do(ctx, func() error { return c.l.Bind(p.cfg.BindDN, p.bindPassword) }); err != nil {
			c.close()
			return nil, false, fmt.Errorf("service bind as %q: %w", p.cfg.BindDN, err)
		}
	}
	return c, false, nil
}

// idle takes a usable connection from the pool; nil if there is none.
func (p *Provider) idle() *conn {
	for {
		select {
		case c := <-p.pool:
			if c.usable() {
				return c
			}
			c.close()
		default:
			return nil
		}
	}
}

// put returns a service connection to the pool, or closes it when it is
// bad or the pool is full.
func (p *Provider) put(c *conn) {
	if !c.usable() {
		c.close()
		return
	}
	select {
	case p.pool <- c:
	default:
		c.close()
	}
}
