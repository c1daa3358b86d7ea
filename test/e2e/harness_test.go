package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/internal/demoftpd"
	"github.com/ftpsgate/ftpsgate/metrics"
	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	user     = "demo"
	password = "s3cret-Pa55word"
)

// gateway is a running proxy.Server in front of a demo backend.
type gateway struct {
	srv     *proxy.Server
	cfg     proxy.Config
	root    string // the backend's directory
	logs    *testproc.SyncBuffer
	backend *demoftpd.Server
	metrics *metrics.Metrics // fed by the gateway's events
}

func (g *gateway) addr(name string) string { return g.srv.Addr(name).String() }

var portMu sync.Mutex
var nextBase = 52000

// freePorts finds n consecutive free ports on 127.0.0.1.
func freePorts(t *testing.T, n int) nat.PortRange {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for ; nextBase < 60000; nextBase += n {
		ok := true
		for p := nextBase; p < nextBase+n; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			r := nat.PortRange{Low: uint16(nextBase), High: uint16(nextBase + n - 1)}
			nextBase += n
			return r
		}
	}
	t.Fatal("no free port range")
	return nat.PortRange{}
}

type option func(*proxy.Config)

// startGateway starts a demo backend and a gateway with an explicit and an
// implicit listener on 127.0.0.1.
func startGateway(t *testing.T, opts ...option) *gateway {
	t.Helper()
	return startGatewayWith(t, nil, opts...)
}

// startGatewayWith is startGateway with collaborators for proxy.New.
func startGatewayWith(t *testing.T, deps []proxy.Option, opts ...option) *gateway {
	t.Helper()
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	be, err := demoftpd.Start(ctx, demoftpd.Config{Root: root, User: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	cfg := proxy.Config{
		Listeners: []proxy.Listener{
			{Name: "explicit", Address: "127.0.0.1:0", TLS: proxy.TLSExplicit},
			{Name: "implicit", Address: "127.0.0.1:0", TLS: proxy.TLSImplicit},
		},
		TLS:      policy.TLSConfig{RequireProtectedData: true, DataSessionReuse: policy.ReuseUser},
		Backend:  proxy.Backend{Address: be.Addr(), TLS: proxy.TLSNone},
		Passive:  nat.Config{Ports: freePorts(t, 4)},
		Timeouts: proxy.Timeouts{Connect: 2 * time.Second, DataAccept: 3 * time.Second, Idle: 30 * time.Second},
	}
	for _, o := range opts {
		o(&cfg)
	}
	logs := &testproc.SyncBuffer{}
	mets := metrics.New()
	srv, err := proxy.New(cfg, zerolog.New(logs).Level(zerolog.DebugLevel), append([]proxy.Option{proxy.WithEvents(mets)}, deps...)...)
	if err != nil {
		t.Fatal(err)
	}
	mets.Watch(metrics.State{PassiveInUse: srv.PassiveInUse, CertNotAfter: srv.CertificateNotAfter})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	g := &gateway{srv: srv, cfg: cfg, root: root, logs: logs, backend: be, metrics: mets}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
		be.Close()
		if strings.Contains(logs.String(), password) {
			t.Errorf("the password appears in the gateway's log")
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return g
}

func clientTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // the gateway serves a generated certificate
		ServerName:         "127.0.0.1",
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
		MinVersion:         tls.VersionTLS12,
	}
}

// dial logs in through the gateway with jlaffaye/ftp.
func dial(t *testing.T, g *gateway, listener string, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()
	all := []ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}
	switch listener {
	case "explicit":
		all = append(all, ftp.DialWithExplicitTLS(clientTLS()))
	case "implicit":
		all = append(all, ftp.DialWithTLS(clientTLS()))
	}
	all = append(all, opts...)
	c, err := ftp.Dial(g.addr(listener), all...)
	if err != nil {
		t.Fatalf("dial %s: %v", listener, err)
	}
	if err := c.Login(user, password); err != nil {
		c.Quit()
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { c.Quit() })
	return c
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string { h := sha256.Sum256(b); return fmt.Sprintf("%x", h) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ftpDial(addr string) (*ftp.ServerConn, error) {
	return ftp.Dial(addr, ftp.DialWithTLS(clientTLS()), ftp.DialWithTimeout(10*time.Second))
}

type quitter struct{ c *ftp.ServerConn }

func (q quitter) Close() { q.c.Quit() }

// serveEach accepts connections on ln until the test ends and runs handle
// on each in a goroutine of its own, closing the connection after. At the
// end it closes ln and the connections still open, and waits for the
// handlers.
func serveEach(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}
