package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
)

// Agent is the LAN's end: it keeps a tunnel to a gateway and connects the
// gateway's streams to the destinations its allow list names.
type Agent struct {
	cfg AgentConfig
	log zerolog.Logger
	sem chan struct{}
	wg  sync.WaitGroup // stream handlers
}

// NewAgent returns an agent for cfg (validated by the caller).
func NewAgent(cfg AgentConfig, log zerolog.Logger) *Agent {
	if cfg.Name == "" {
		cfg.Name = "agent"
	}
	return &Agent{cfg: cfg, log: log.With().Str("agent_group", cfg.Group).Str("agent", cfg.Name).Logger(),
		sem: make(chan struct{}, cfg.maxStreams())}
}

// Run keeps a tunnel up, reconnecting with exponential backoff and jitter,
// until ctx ends; it returns once every stream has ended.
func (a *Agent) Run(ctx context.Context) error {
	defer a.wg.Wait()
	if len(a.cfg.Allow) == 0 {
		a.log.Warn().Msg("the allow list is empty: every stream will be refused")
	}
	failures := 0
	for i := 0; ctx.Err() == nil; i++ {
		gw := a.cfg.Gateways[i%len(a.cfg.Gateways)]
		sess, err := a.connect(ctx, gw)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			d := backoff(a.cfg.backoffMin(), a.cfg.backoffMax(), failures)
			a.log.Warn().Err(err).Str("gateway", gw).Dur("retry_in", d).Msg("cannot reach the gateway")
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		a.log.Info().Str("gateway", gw).Msg("tunnel up")
		a.serve(ctx, sess)
		a.log.Warn().Str("gateway", gw).Msg("tunnel down")
		// A tunnel that went down waits too, so that a gateway that
		// accepts and drops cannot make the agent spin.
		d := backoff(a.cfg.backoffMin(), a.cfg.backoffMax(), 1)
		select {
		case <-time.After(d):
		case <-ctx.Done():
		}
	}
	return nil
}

// backoff is min·2^(n-1) capped at max, with full jitter in its upper half.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// connect dials gw, checks its certificate, says hello and starts the
// yamux session (the agent is yamux's server: it accepts the streams).
func (a *Agent) connect(ctx context.Context, gw string) (*yamux.Session, error) {
	dctx, cancel := context.WithTimeout(ctx, a.cfg.handshake())
	defer cancel()
	host, _, err := net.SplitHostPort(gw)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         host, // SNI (an IP address is not sent)
		Certificates:       []tls.Certificate{a.cfg.Certificate},
		InsecureSkipVerify: true, // verified in VerifyConnection: pins and/or CA
		VerifyConnection:   func(cs tls.ConnectionState) error { return a.verifyGateway(cs, host) },
	}
	nd := net.Dialer{KeepAlive: a.cfg.keepAlive()}
	raw, err := nd.DialContext(dctx, "tcp", gw)
	if err != nil {
		return nil, err
	}
	bc := &batchConn{Conn: raw}
	c := tls.Client(bc, conf)
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	if err := c.HandshakeContext(dctx); err != nil {
		return nil, err
	}
	dl, _ := dctx.Deadline()
	_ = c.SetDeadline(dl)
	if err := WriteLine(c, helloLine(a.cfg.Group, a.cfg.Name)); err != nil {
		return nil, err
	}
	line, err := ReadLine(c)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if line != "OK" {
		rep, err := ParseReply(line)
		if err != nil {
			return nil, fmt.Errorf("hello: %w", err)
		}
		return nil, fmt.Errorf("the gateway refused the agent: %s: %s", rep.Code, rep.Text)
	}
	_ = c.SetDeadline(time.Time{})
	sess, err := yamux.Server(&frameWriter{ReadWriteCloser: c, batch: bc}, muxConfig(a.cfg.keepAlive(), a.cfg.maxStreams()))
	if err != nil {
		return nil, err
	}
	ok = true
	return sess, nil
}

func (a *Agent) verifyGateway(cs tls.ConnectionState, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the gateway sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if len(a.cfg.GatewayPins) > 0 {
		sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
		ok := 0
		for _, p := range a.cfg.GatewayPins {
			ok |= subtle.ConstantTimeCompare(sum[:], p[:])
		}
		if ok != 1 {
			return errors.New("the gateway's certificate matches none of gateway_pins")
		}
	}
	if a.cfg.GatewayCA != nil {
		name := a.cfg.ServerName
		if name == "" {
			name = host
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: a.cfg.GatewayCA, Intermediates: inter}); err != nil {
			return fmt.Errorf("the gateway's certificate: %w", err)
		}
	}
	return nil
}

// serve accepts the gateway's streams until the session ends or ctx does.
func (a *Agent) serve(ctx context.Context, sess *yamux.Session) {
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	defer sess.Close()
	for {
		st, err := sess.AcceptStream()
		if err != nil {
			return
		}
		a.wg.Add(1)
		go a.handle(st)
	}
}
