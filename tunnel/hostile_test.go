package tunnel

import (
	"crypto/tls"
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
