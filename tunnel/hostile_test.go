package tunnel

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// hostileAgent joins the Hub of gw with leaf's pinned certificate (as an
// agent whose key leaked would) and returns its yamux session: the test
// speaks yamux for it, not the Agent.
func hostileAgent(t *testing.T, leaf *tls.Certificate, gw, group string) *yamux.Session {
	t.Helper()
	c, err := tls.Dial("tcp", gw, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
		Certificates: []tls.Certificate{*leaf}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := WriteLine(c, helloLine(group, "hostile")); err != nil {
		t.Fatal(err)
	}
	if line, err := ReadLine(c); err != nil || line != "OK" {
		t.Fatalf("hello: %q %v", line, err)
	}
	_ = c.SetDeadline(time.Time{})
	conf := muxConfig(time.Second, DefaultMaxStreams)
	conf.StreamOpenTimeout = 0 // its streams wait for the gateway's ACK for ever
	sess, err := yamux.Server(c, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// TestHubRefusesAgentStreams: the gateway opens the streams; a stream an
// agent opens toward the gateway is a protocol violation. Left in yamux's
// accept backlog (the Hub never accepted them), each held up to a 256 KiB
// receive window, 256 of them per tunnel, and a leaked agent key can open
// any number of tunnels. The Hub drops such an agent at once.
func TestHubRefusesAgentStreams(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	var hubLog testproc.SyncBuffer
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.New(&hubLog))
	sess := hostileAgent(t, &leaf.TLS, gw, "lan")
	waitAgents(t, h, "lan", 1)
	// The Hub may drop the agent before OpenStream returns: its SYN is
	// enough.
	if st, err := sess.OpenStream(); err == nil {
		_, _ = st.Write(make([]byte, 128<<10))
	} else if !errors.Is(err, yamux.ErrSessionShutdown) {
		t.Fatal(err)
	}
	select {
	case <-sess.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatal("the Hub kept an agent that opened a stream toward it")
	}
	waitAgents(t, h, "lan", 0)
	waitLog(t, &hubLog, "opened a stream toward the gateway")
}

// TestFromHintLimited: FROM (the control connection's local address) sets
// the local address of the agent's connection only when one of the
// agent's open connections uses that address: a compromised gateway cannot
// pick any of the agent host's addresses (another interface's, one that
// policy routing sends elsewhere) as the source of its connections.
func TestFromHintLimited(t *testing.T) {
	peers := make(chan string, 4)
	dst := serveTCP(t, func(c net.Conn) {
		peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		_, _ = io.Copy(io.Discard, c)
	})
	h, _ := lan(t, dst, nil)
	dial := func(from string) net.Conn {
		t.Helper()
		c, err := h.Dialer("lan").DialBackend(dialCtx(t), dst, netipAddr(from))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// 127.0.0.2 is the agent host's (all of 127/8 is), but none of its
	// connections uses it.
	dial("127.0.0.2")
	if got := <-peers; got != "127.0.0.1" {
		t.Fatalf("FROM 127.0.0.2 with no connection from it: the destination saw %s", got)
	}
	// The hint is taken when it is an open connection's local address.
	ctl := dial("")
	<-peers
	local := ctl.LocalAddr().(*net.TCPAddr).AddrPort().Addr()
	dial(local.String())
	if got := <-peers; got != local.String() {
		t.Fatalf("FROM %s: the destination saw %s", local, got)
	}
	ctl.Close()
}

// hostileGateway accepts one agent on a loopback listener with the
// gateway's certificate and answers its hello: the test speaks yamux for
// the gateway. It returns the listener's address and a channel that
// yields the agent's session.
func hostileGateway(t *testing.T, p *pki) (string, <-chan *yamux.Session) {
	t.Helper()
	cert := p.gateway.TLS
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan *yamux.Session, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadLine(c); err != nil || WriteLine(c, "OK") != nil {
			c.Close()
			return
		}
		_ = c.SetDeadline(time.Time{})
		conf := muxConfig(time.Second, 1024)
		conf.StreamOpenTimeout = 0
		sess, err := yamux.Client(c, conf)
		if err != nil {
			c.Close()
			return
		}
		out <- sess
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		select {
		case s := <-out:
			s.Close()
		default:
		}
	})
	return ln.Addr().String(), out
}

// TestAgentBoundsGatewayStreams: streams the agent has refused stay in its
// tunnel until the gateway closes them (yamux cannot reset one), each with
// up to a 256 KiB receive window of the gateway's bytes. A gateway that
// opens streams and never closes them made the agent hold as many as it
// liked; past 2×(max_streams + 256) streams on its tunnel, the agent
// drops it.
func TestAgentBoundsGatewayStreams(t *testing.T) {
	p := newPKI(t)
	leaf := p.client(t, "a")
	gw, sessions := hostileGateway(t, p)
	cfg := agentConfig(p, leaf, gw, "lan", "a", "10.0.0.5:21")
	cfg.MaxStreams = 2
	cfg.BackoffMin, cfg.BackoffMax = time.Minute, time.Minute // one tunnel in this test
	ag := startAgent(t, cfg)
	var sess *yamux.Session
	select {
	case sess = <-sessions:
	case <-time.After(5 * time.Second):
		t.Fatal("the agent did not connect")
	}
	n := tunnelStreams(cfg.MaxStreams) + 10
	for i := range n {
		st, err := sess.OpenStream()
		if err != nil {
			break // the agent dropped the tunnel
		}
		_ = st.SetDeadline(time.Now().Add(2 * time.Second))
		if WriteLine(st, "CONNECT 10.0.0.6:21") != nil {
			break
		}
		if _, err := ReadLine(st); err != nil {
			break
		}
		_, _ = st.Write(make([]byte, 4<<10)) // held in the agent's window
		if i == n-1 {
			t.Fatalf("the agent took %d streams the gateway never closed, with max_streams 2", n)
		}
	}
	select {
	case <-sess.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatal("the tunnel is still up")
	}
	waitLog(t, ag.log, "streams open on the tunnel")
}

// pingFrames is n yamux ping requests (SYN), as a peer floods them.
func pingFrames(n int) []byte {
	b := make([]byte, 0, n*headerSize)
	for i := range n {
		h := make([]byte, headerSize)
		h[1], h[3] = typePing, 1 // flags: SYN
		binary.BigEndian.PutUint32(h[8:], uint32(i))
		b = append(b, h...)
	}
	return b
}

// TestPingFloodDropsTunnel: yamux answers each ping in a goroutine of its
// own, which waits up to the write timeout while the peer does not read:
// a peer flooding pings made the other end start goroutines without
// bound. Each end drops a tunnel whose peer sends far more pings than a
// keepalive does.
func TestPingFloodDropsTunnel(t *testing.T) {
	t.Run("gateway", func(t *testing.T) {
		p := newPKI(t)
		leaf := p.client(t, "a")
		cert := p.gateway.TLS
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := agentConfig(p, leaf, ln.Addr().String(), "lan", "a")
		cfg.BackoffMin, cfg.BackoffMax = time.Minute, time.Minute
		ag := startAgent(t, cfg)
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := ReadLine(c); err != nil || WriteLine(c, "OK") != nil {
			t.Fatal("hello", err)
		}
		_, _ = c.Write(pingFrames(2000))
		waitLog(t, ag.log, "ping flood")
		waitLog(t, ag.log, "tunnel down")
	})
	t.Run("agent", func(t *testing.T) {
		p := newPKI(t)
		leaf := p.client(t, "a")
		var hubLog testproc.SyncBuffer
		h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.New(&hubLog))
		c, err := tls.Dial("tcp", gw, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
			Certificates: []tls.Certificate{leaf.TLS}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if WriteLine(c, helloLine("lan", "flood")) != nil {
			t.Fatal("hello")
		}
		if line, err := ReadLine(c); err != nil || line != "OK" {
			t.Fatalf("hello: %q %v", line, err)
		}
		waitAgents(t, h, "lan", 1)
		_, _ = c.Write(pingFrames(2000))
		waitLog(t, &hubLog, "ping flood")
		waitAgents(t, h, "lan", 0)
	})
}
