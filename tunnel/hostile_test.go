package tunnel

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/rs/zerolog"
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
	var hubLog syncBuffer
	h, gw := startHub(t, p, "127.0.0.1:0", map[string][][32]byte{"lan": {pinOf(leaf)}}, zerolog.New(&hubLog))
	sess := hostileAgent(t, &leaf.TLS, gw, "lan")
	waitAgents(t, h, "lan", 1)
	st, err := sess.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = st.Write(make([]byte, 128<<10))
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
