package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// ErrNoAgent: no agent of the group was connected (with a free stream)
// within the wait. The session answers 421 (backend unavailable).
var ErrNoAgent = errors.New("tunnel: no agent connected")

// ErrTunnelLost: a stream ended because its tunnel did (the agent or the
// gateway went away, the keepalive failed, the agent's pin was revoked), not
// by the other end's FIN: what was read is not the whole stream. yamux ends
// every stream of a closed session as if at EOF; a plain-FTP transfer
// would then look complete.
var ErrTunnelLost = errors.New("tunnel: the tunnel ended before the stream did")

// endOf is err, but an end of stream while the stream's tunnel is closed
// is ErrTunnelLost. A FIN that arrived just before its tunnel ended, not
// read yet, counts as lost too: fail closed.
func endOf(st *yamux.Stream, err error) error {
	if err == io.EOF && st.Session().IsClosed() {
		return ErrTunnelLost
	}
	return err
}

// freeStreamPoll is how often a dial waiting for an agent looks again
// (streams ending do not signal).
const freeStreamPoll = 20 * time.Millisecond

// RefusedError is an agent's refusal of a destination (not allowed, busy,
// or its own connection failed).
type RefusedError struct {
	Agent, Address, Code, Text string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("tunnel: agent %s refused %s: %s: %s", e.Agent, e.Address, e.Code, e.Text)
}

// Dialer opens connections through the agents of one group; it is a
// proxy.Dialer.
type Dialer struct {
	hub   *Hub
	group string
}

// Dialer returns the Dialer of group.
func (h *Hub) Dialer(group string) *Dialer { return &Dialer{hub: h, group: group} }

// maxAgentTries bounds the agents one dial tries.
const maxAgentTries = 4

// silentAgent is how long a stream request waits for any sign of life
// from its agent (yamux acknowledges a new stream as the agent accepts
// it, and keepalives flow) before the request is given up and the agent
// set aside: a host that lost power or its network sends no FIN, and
// yamux's keepalive takes up to twice agents.keepalive to notice, while
// its few open streams made it the first choice of every new session. Set
// aside, the agent takes no new session until it is heard from again (any
// byte through its tunnel); its tunnel and the sessions on it are left to
// the keepalive, so that an agent that was only slow loses nothing. A dial
// whose deadline comes first (a health check's timeout) sets the agent
// aside too when it heard nothing for at least silentMin: the next check
// goes to another agent instead of taking the backend down.
const (
	silentAgent = 3 * time.Second
	silentMin   = time.Second
)

// errSilentAgent: the agent sent nothing at all within silentAgent of a
// stream request (it is set aside).
var errSilentAgent = errors.New("tunnel: the agent sent nothing since the request: set aside until it is heard from")

// DialBackend opens a stream on a live agent of the group (the one with the
// fewest open streams), asks it to connect to address (from local, when
// valid) and returns the stream once the agent answered OK. Without an
// agent it waits up to the Hub's WaitForAgent (or ctx) and fails with
// ErrNoAgent.
//
// A dial that an agent refuses (busy, draining, its own connection failed,
// not in its allow list) or whose tunnel fails is tried on another agent
// of the group, each at most once. A session's data connections go
// through DialData instead: through the agent of its control connection,
// and no other.
func (d *Dialer) DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error) {
	h := d.hub
	wait := time.NewTimer(h.conf().wait())
	defer wait.Stop()
	var tried []*agent
	var lastErr error
	for {
		a, changed, err := h.pick(d.group, tried)
		if err != nil {
			return nil, err
		}
		if a == nil && changed == nil {
			return nil, lastErr // every live agent was tried
		}
		if a == nil {
			select {
			case <-changed: // an agent joined
				continue
			case <-time.After(freeStreamPoll): // a stream may have ended
				continue
			case <-wait.C:
			case <-ctx.Done():
			}
			if lastErr != nil && ctx.Err() == nil {
				return nil, lastErr
			}
			h.metrics.dialError(d.group)
			return nil, fmt.Errorf("%w: group %s: %s", ErrNoAgent, d.group, orCause(ctx.Err(), "none connected with a free stream"))
		}
		c, err := d.open(ctx, a, address, local)
		if err == nil {
			return c, nil
		}
		var re *RefusedError
		refused := errors.As(err, &re)
		if refused && re.Code == CodeDraining {
			a.goneAway.Store(true) // no new sessions; its own sessions' data still (DialData)
		}
		if ctx.Err() != nil || len(tried)+1 >= maxAgentTries || (refused && re.Code == CodeBadRequest) {
			return nil, err
		}
		tried, lastErr = append(tried, a), err
		msg := "tunnel stream failed, trying another agent" // its tunnel failed, or it was silent (set aside)
		if refused {
			msg = "agent refused the stream, trying another agent"
		}
		h.log.Warn().Err(err).Str("agent", a.name).Str("agent_group", d.group).Msg(msg)
	}
}

// DialData opens a data connection to address for the session whose
// control connection is control (a connection a Dialer of this Hub
// returned): through the agent that carries control, the one agent whose
// connections the server sees coming from the control connection's host
// (vsftpd refuses a data connection from another: 425 Security: Bad IP
// connecting). Agents on two hosts may connect from the same local address
// (containers on two hosts' bridges, each 172.17.0.2): the address alone
// does not tell them apart. It waits, as DialBackend does, while that
// agent has no free stream; when the agent is gone (the session's control
// connection with it) it fails with ErrTunnelLost. An agent that drains
// still takes these (not new sessions). A control connection that is not a
// stream of this Hub, or whose agent sent a yamux GoAway (an agent of an
// earlier version, draining: it opens no more streams), dials as
// DialBackend does, from control's local address.
func (d *Dialer) DialData(ctx context.Context, address string, control net.Conn) (net.Conn, error) {
	var local netip.Addr
	if ap, err := netip.ParseAddrPort(control.LocalAddr().String()); err == nil {
		local = ap.Addr().Unmap()
	}
	sc, ok := control.(*streamConn)
	if !ok || sc.hub != d.hub || sc.agent.group != d.group {
		return d.DialBackend(ctx, address, local)
	}
	a, h := sc.agent, d.hub
	wait := time.NewTimer(h.conf().wait())
	defer wait.Stop()
	for {
		if a.sess.IsClosed() {
			h.metrics.dialError(d.group)
			return nil, fmt.Errorf("tunnel: agent %s: %w", a.name, ErrTunnelLost)
		}
		if n := a.open.Load(); int(n) < h.conf().maxStreams() && a.open.CompareAndSwap(n, n+1) {
			c, err := d.open(ctx, a, address, local)
			if errors.Is(err, yamux.ErrRemoteGoAway) {
				return d.DialBackend(ctx, address, local)
			}
			return c, err
		}
		select {
		case <-time.After(freeStreamPoll): // a stream may have ended
			continue
		case <-wait.C:
		case <-ctx.Done():
		}
		h.metrics.dialError(d.group)
		return nil, fmt.Errorf("%w: group %s: agent %s: %s", ErrNoAgent, d.group, a.name, orCause(ctx.Err(), "no free stream"))
	}
}

func (d *Dialer) open(ctx context.Context, a *agent, address string, local netip.Addr) (net.Conn, error) {
	h := d.hub
	release := sync.OnceFunc(func() { a.open.Add(-1) })
	fail := func(err error) (net.Conn, error) {
		release()
		h.metrics.dialError(d.group)
		return nil, err
	}
	st, err := a.sess.OpenStream()
	if err != nil {
		if errors.Is(err, yamux.ErrSessionShutdown) || a.sess.IsClosed() {
			_ = a.sess.Close()
		}
		if errors.Is(err, yamux.ErrRemoteGoAway) {
			a.goneAway.Store(true) // the agent drains: pick another
		}
		return fail(fmt.Errorf("tunnel: agent %s: open stream: %w", a.name, err))
	}
	stop := context.AfterFunc(ctx, func() { _ = st.SetDeadline(time.Now()) })
	defer stop()
	_ = st.SetDeadline(ctxDeadline(ctx, h.conf().handshake()))
	req := Request{Address: address, From: local}
	if err := WriteLine(st, req.String()); err != nil {
		_ = st.Close()
		return fail(fmt.Errorf("tunnel: agent %s: %w", a.name, err))
	}
	sent := time.Now()
	var silent atomic.Bool
	dropSilent := func() {
		if a.fw.heardSince(sent) || silent.Swap(true) {
			return
		}
		a.silentSince.Store(sent.UnixNano())
		h.log.Warn().Str("agent", a.name).Str("agent_group", a.group).Str("agent_addr", a.remote).
			Dur("silent_for", time.Since(sent)).Msg("agent set aside: silent after a stream request (its host or network may be gone); no new session on it until it is heard from")
		_ = st.SetDeadline(time.Now()) // this request goes to another agent
	}
	watch := time.AfterFunc(silentAgent, dropSilent)
	line, err := ReadLine(st)
	watch.Stop()
	if err != nil {
		_ = st.Close()
		if time.Since(sent) >= silentMin {
			dropSilent()
		}
		if silent.Load() {
			err = errSilentAgent
		}
		return fail(fmt.Errorf("tunnel: agent %s: no reply for %s: %w", a.name, address, err))
	}
	rep, err := ParseReply(line)
	if err != nil {
		_ = st.Close()
		return fail(fmt.Errorf("tunnel: agent %s: %w", a.name, err))
	}
	if rep.Code != "" {
		_ = st.Close()
		release()
		h.metrics.refusedStream(d.group, rep.Code)
		return nil, &RefusedError{Agent: a.name, Address: address, Code: rep.Code, Text: rep.Text}
	}
	if !stop() {
		_ = st.Close()
		return fail(fmt.Errorf("tunnel: %w", ctx.Err()))
	}
	_ = st.SetDeadline(time.Time{})
	return &streamConn{Stream: st, release: release, fw: a.fw, agent: a, hub: h,
		local:  net.TCPAddrFromAddrPort(rep.Local),
		remote: net.TCPAddrFromAddrPort(rep.Remote)}, nil
}

func orCause(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// streamConn is a stream as the gateway's sessions see it: its addresses
// are those of the agent's connection to the destination (the session
// dials data connections to the backend's control host and from the
// control connection's local address).
type streamConn struct {
	*yamux.Stream
	release       func()
	fw            *frameWriter // of the stream's tunnel: Reset
	agent         *agent       // that carries it: DialData
	hub           *Hub
	local, remote net.Addr
	closeOnce     sync.Once
	closed        atomic.Bool
	halfClosed    atomic.Int64 // when CloseWrite was called (UnixNano)
}

// Read reads; after Close it fails with net.ErrClosed, as a socket does,
// and when the tunnel ended under the stream, with ErrTunnelLost. After
// CloseWrite, yamux ends the stream at closeTimeout whatever the agent
// still sends, as if at the agent's end: an end then is an error too.
func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Stream.Read(b)
	if err != nil && c.closed.Load() {
		err = net.ErrClosed
	}
	if t := c.halfClosed.Load(); err == io.EOF && t != 0 && time.Since(time.Unix(0, t)) >= closeTimeout {
		return n, errHalfCloseTimeout
	}
	return n, endOf(c.Stream, err)
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes: the agent half-closes its connection to the
// destination in turn.
func (c *streamConn) CloseWrite() error {
	c.halfClosed.CompareAndSwap(0, time.Now().UnixNano()) // before Close starts yamux's timer
	return c.Stream.Close()
}

// Reset ends the stream as a TCP reset ends a socket (proxy/relay's
// ResetConn calls it): the agent resets its connection to the destination,
// where a Close's FIN would be passed on as the clean end of a cut upload.
// Pending reads and writes end at once; the RST goes out before the
// stream's FIN, from a goroutine, so that a tunnel whose agent does not read
// does not hold the caller.
func (c *streamConn) Reset() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		_ = c.Stream.SetDeadline(time.Now())
		c.release()
		go func() {
			if c.fw != nil {
				_ = c.fw.reset(c.Stream.StreamID())
			}
			_ = c.Stream.Close()
		}()
	})
	return nil
}

// Close ends the stream: a FIN to the agent and the end of pending reads.
func (c *streamConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err = c.Stream.Close()
		_ = c.Stream.SetReadDeadline(time.Now())
		c.release()
	})
	return err
}
