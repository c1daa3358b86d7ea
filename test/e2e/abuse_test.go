package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
)

// dialFrom connects from a given loopback address and reads the greeting,
// TLS first (implicit listener).
func dialFrom(t *testing.T, from, addr string) (*rawClient, wire.Reply) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, r: wire.NewReader(conn), tls: clientTLS()}
	t.Cleanup(func() { c.conn.Close() })
	return c, c.read()
}

// TestBans: five wrong passwords from 127.0.0.3 ban it, 127.0.0.4 keeps
// working, the ban survives a restart, and lifting it lets 127.0.0.3 in.
func TestBans(t *testing.T) {
	state := filepath.Join(t.TempDir(), "bans.json")
	withBans := func(c *proxy.Config) {
		c.Bans = policy.BanConfig{MaxFailures: 5, Window: time.Minute, Duration: time.Hour, StateFile: state}
		c.Listeners[0].AllowCleartext = true // plain explicit logins keep this test short
		c.TLS.RequireProtectedData = false
	}
	g := startGateway(t, withBans)
	c, greeting := dialFrom(t, "127.0.0.3", g.addr("explicit"))
	if greeting.Code != wire.StatusReady {
		t.Fatalf("greeting %d", greeting.Code)
	}
	for i := range 5 {
		c.do("USER "+user, wire.StatusUserOK)
		c.do("PASS wrong", wire.StatusNotLoggedIn)
		if i == 4 {
			c.expect(wire.StatusNotAvailable) // banned: the session ends
		}
	}
	if _, rep := dialFrom(t, "127.0.0.3", g.addr("explicit")); rep.Code != wire.StatusNotAvailable {
		t.Fatalf("banned address greeted with %d", rep.Code)
	}
	ok, rep := dialFrom(t, "127.0.0.4", g.addr("explicit"))
	if rep.Code != wire.StatusReady {
		t.Fatalf("127.0.0.4 refused: %d", rep.Code)
	}
	ok.do("USER "+user, wire.StatusUserOK)
	ok.do("PASS "+password, wire.StatusLoggedIn)
	if !strings.Contains(g.logs.String(), "address banned") {
		t.Error("the ban is not logged")
	}

	// A restart keeps the ban.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	g2 := startGateway(t, withBans)
	if _, rep := dialFrom(t, "127.0.0.3", g2.addr("implicit")); rep.Code != wire.StatusNotAvailable {
		t.Fatalf("after a restart the banned address got %d", rep.Code)
	}
	if !g2.srv.Defender().Unban(netip.MustParseAddr("127.0.0.3")) {
		t.Fatal("Unban found no ban")
	}
	if _, rep := dialFrom(t, "127.0.0.3", g2.addr("explicit")); rep.Code != wire.StatusReady {
		t.Fatalf("after the unban: %d", rep.Code)
	}
}

// TestGarbageBans: protocol abuse counts too.
func TestGarbageBans(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Bans = policy.BanConfig{MaxFailures: 3} })
	c, _ := dialFrom(t, "127.0.0.7", g.addr("explicit"))
	c.do("\x01\x02garbage", wire.StatusSyntaxError)
	c.do("NOOP "+strings.Repeat("A", 5000), wire.StatusSyntaxError)
	c.do("\x16\x03\x01", wire.StatusNotAvailable)
	if _, rep := dialFrom(t, "127.0.0.7", g.addr("explicit")); rep.Code != wire.StatusNotAvailable {
		t.Fatalf("abuser greeted with %d", rep.Code)
	}
}

func TestSessionLimits(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) {
		c.Limits = policy.Limits{MaxSessionsPerIP: 2, MaxSessionsPerUser: 1, ConnRate: 100, ConnBurst: 100}
		c.Listeners[0].AllowCleartext = true
	})
	a, _ := dialFrom(t, "127.0.0.8", g.addr("explicit"))
	a.do("USER "+user, wire.StatusUserOK)
	a.do("PASS "+password, wire.StatusLoggedIn)
	b, _ := dialFrom(t, "127.0.0.8", g.addr("explicit"))
	b.do("USER "+user, wire.StatusUserOK)
	b.do("PASS "+password, wire.StatusNotAvailable) // one session per user, counted at login
	// b's session is over: a third from the same address fits again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, rep := dialFrom(t, "127.0.0.8", g.addr("explicit"))
		if rep.Code == wire.StatusReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed session slot was not reused: %d", rep.Code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, rep := dialFrom(t, "127.0.0.8", g.addr("explicit"))
	if rep.Code != wire.StatusNotAvailable {
		t.Fatalf("a third concurrent session from one address: %d, want 421", rep.Code)
	}
}

// TestCommandRateSlowsDown: over the command rate a session is slowed, not
// closed (a lower bound on time, which the limiter guarantees).
func TestCommandRateSlowsDown(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Limits = policy.Limits{CommandRate: 20, CommandBurst: 5} })
	c := dialRaw(t, g.addr("implicit"), true)
	start := time.Now()
	for range 25 {
		c.do("NOOP", wire.StatusCommandOK)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("25 commands at 20/s (burst 5) took %s: not limited", d)
	}
}

// TestBandwidthLimit: a download through a 1 MiB/s session limit takes at
// least as long as the limit allows, and arrives whole.
func TestBandwidthLimit(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.Limits = policy.Limits{SessionBandwidth: 1 << 20} })
	data := randomBytes(t, 3<<20)
	writeFile(t, g.root, "slow.bin", data)
	c := dial(t, g, "explicit")
	start := time.Now()
	r, err := c.Retr("slow.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if sum(got) != sum(data) {
		t.Fatal("throttled download differs")
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("3 MiB at 1 MiB/s took %s", d)
	}
}

// TestFlood: 2,000 connection attempts from 400 loopback addresses leave
// the gateway serving a client from an allowed address, and its tables and
// heap flat once the flood is over.
func TestFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	g := startGateway(t, func(c *proxy.Config) {
		c.Limits = policy.Limits{ConnRate: 1, ConnBurst: 2, MaxSessionsPerIP: 2, MaxSessions: 200,
			Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		c.Bans = policy.BanConfig{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
		c.Timeouts.Login = 2 * time.Second
	})
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()

	const attempts, workers = 2000, 32
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				a := i / 5 // five attempts in a row per address, faster than conn_rate allows
				from := fmt.Sprintf("127.10.%d.%d", a/200+1, a%200+1)
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 2 * time.Second}
				conn, err := d.Dial("tcp", g.addr("explicit"))
				if err != nil {
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
				line := make([]byte, 3)
				_, _ = io.ReadFull(conn, line)
				var code int
				fmt.Sscan(string(line), &code)
				mu.Lock()
				codes[code]++
				mu.Unlock()
				conn.Close()
			}
		}()
	}
	// The legitimate client works during the flood.
	done := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		c, err := dialTLSLogin(g)
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(60 * time.Second)
	for i := range attempts {
		if time.Now().After(deadline) {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("the legitimate client failed during the flood: %v", err)
	}
	if c, err := dialTLSLogin(g); err != nil {
		t.Fatalf("the legitimate client failed after the flood: %v", err)
	} else {
		c.Close()
	}
	t.Logf("flood replies: %v", codes)
	if codes[wire.StatusReady] == 0 || codes[wire.StatusNotAvailable] == 0 {
		t.Fatalf("want both greetings and 421 refusals over the flood: %v", codes)
	}

	// Flat: the sessions end (login timeout), the per-address table empties.
	deadline = time.Now().Add(15 * time.Second)
	for g.srv.SessionCount() > 0 || g.srv.Admission().Stats().TrackedIPs > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: %d sessions, %d tracked addresses", g.srv.SessionCount(), g.srv.Admission().Stats().TrackedIPs)
		}
		g.srv.Admission().Sweep()
		time.Sleep(200 * time.Millisecond)
	}
	if after := heap(); after > before+8<<20 {
		t.Fatalf("heap grew from %d to %d bytes over the flood", before, after)
	}
}

// dialTLSLogin logs in with the Go client over implicit TLS and lists.
func dialTLSLogin(g *gateway) (interface{ Close() }, error) {
	c, err := ftpDial(g.addr("implicit"))
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, password); err != nil {
		c.Quit()
		return nil, err
	}
	if _, err := c.List("/"); err != nil {
		c.Quit()
		return nil, err
	}
	return quitter{c}, nil
}
