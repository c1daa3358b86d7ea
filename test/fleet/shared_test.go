package fleet

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ftpsgate/ftpsgate/internal/testredis"
)

// The shared state through the balancer (issue 16, scope 1 and 2): the
// replicas share bans, session places and TOTP state in a real
// redis-server; clients reach only HAProxy, which sends PROXY v2 so that
// every replica sees the real client address (127.0.0.1).

// fleetSection is replica i's fleet: section for srv.
func fleetSection(srv *testredis.Server, mode string) func(int) string {
	return func(i int) string {
		return fmt.Sprintf("fleet:\n  redis: {addresses: [%q]}\n  replica: gw%d\n  on_store_error: %s\n  lease: 3s\n", srv.Addr, i, mode)
	}
}

// ctl is a control connection through the balancer, explicit FTPS.
type ctl struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// dialCtl connects through the balancer and returns the greeting's code
// (the connection is closed when it is not 220).
func (f *Fleet) dialCtl(t testing.TB) (*ctl, int) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", f.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &ctl{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { _ = c.conn.Close() })
	code, _ := c.read()
	if code != 220 {
		_ = conn.Close()
		return nil, code
	}
	c.cmd("AUTH TLS", 234)
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	return c, 220
}

// read reads one reply (its last line's code and text); 0 on EOF.
func (c *ctl) read() (int, string) {
	_ = c.conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	var text strings.Builder
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, text.String()
		}
		text.WriteString(line)
		if len(line) >= 4 && line[3] == ' ' {
			code, _ := strconv.Atoi(line[:3])
			return code, text.String()
		}
	}
}

func (c *ctl) send(line string) { _, _ = io.WriteString(c.conn, line+"\r\n") }

func (c *ctl) cmd(line string, want int) string {
	c.t.Helper()
	c.send(line)
	code, text := c.read()
	if code != want {
		c.t.Fatalf("%s: %d %q, want %d", strings.Fields(line)[0], code, text, want)
	}
	return text
}

// login sends USER and PASS and returns PASS's reply.
func (c *ctl) login(user, pass string) (int, string) {
	c.cmd("USER "+user, 331)
	c.send("PASS " + pass)
	return c.read()
}

// metric reads one sample of the replica's /metrics (-1: absent).
func (r *Replica) metric(t testing.TB, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+r.AdminAddr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+r.f.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func waitUntil(t testing.TB, d time.Duration, what string, diag func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s\n%s", d, what, diag())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFleetBansThroughBalancer: five wrong passwords through the balancer,
// spread over the three replicas, ban the client fleet-wide; every
// replica has the ban within a second; `ftpsgate bans remove` on one
// replica lifts it everywhere.
func TestFleetBansThroughBalancer(t *testing.T) {
	requireInterop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := testredis.Start(t)
	f := Start(ctx, t, Options{ExtraFor: fleetSection(srv, "closed"),
		Bans: map[string]any{"max_failures": 5, "window": "1m", "duration": "1h"}})
	// The failed sessions stay open: leastconn sends each new one to a
	// replica with the fewest, so the first three land on three replicas.
	for i := range 5 {
		c, code := f.dialCtl(t)
		if code != 220 {
			t.Fatalf("attempt %d: greeting %d\n%s", i+1, code, f.Diagnostics())
		}
		code, text := c.login(f.User.Name, "wrong-password")
		if code != 530 {
			t.Fatalf("attempt %d: PASS got %d %q", i+1, code, text)
		}
		if i == 4 {
			if code, text := c.read(); code != 421 {
				t.Fatalf("fifth failure: %d %q, want 421 (banned)", code, text)
			}
		}
	}
	start := time.Now()
	for _, r := range f.Replicas {
		if n := len(r.LogLines("login failed")); n == 0 {
			t.Errorf("gw%d saw none of the failed logins: not spread over the replicas", r.Index)
		}
		for _, l := range r.LogLines("login failed") {
			if c, _ := l["client"].(string); !strings.HasPrefix(c, "127.0.0.1:") {
				t.Errorf("gw%d: failed login from %v, want the real client (PROXY v2)", r.Index, l["client"])
			}
		}
	}
	for _, r := range f.Replicas {
		waitUntil(t, time.Second-time.Since(start)+100*time.Millisecond, fmt.Sprintf("gw%d has the ban", r.Index), f.Diagnostics, func() bool {
			return r.metric(t, "ftpsgate_fleet_ban_cache_size") == 1
		})
	}
	t.Logf("every replica had the ban after %v", time.Since(start))
	for i := range 3 {
		if _, code := f.dialCtl(t); code != 421 {
			t.Fatalf("connection %d through the balancer after the ban: %d, want 421", i+1, code)
		}
	}

	// `ftpsgate bans list` and `remove` through one replica's admin API.
	admin := []string{"--admin", f.Replicas[1].AdminAddr, "--token-file", f.TokenFile}
	out, err := f.command(ctx, append([]string{"bans", "list"}, admin...)...)
	if err != nil || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("ftpsgate bans list: %v\n%s", err, out)
	}
	if out, err := f.command(ctx, append(append([]string{"bans", "remove"}, admin...), "127.0.0.1")...); err != nil {
		t.Fatalf("ftpsgate bans remove: %v\n%s", err, out)
	}
	start = time.Now()
	for _, r := range f.Replicas {
		waitUntil(t, time.Second-time.Since(start)+100*time.Millisecond, fmt.Sprintf("gw%d lifted the ban", r.Index), f.Diagnostics, func() bool {
			return r.metric(t, "ftpsgate_fleet_ban_cache_size") == 0
		})
	}
	for i := range 3 {
		c, code := f.dialCtl(t)
		if code != 220 {
			t.Fatalf("connection %d after bans remove: %d", i+1, code)
		}
		if code, text := c.login(f.User.Name, f.User.Password); code != 230 {
			t.Fatalf("login %d after bans remove: %d %q", i+1, code, text)
		}
	}
}

// TestFleetSessionsPerUserThroughBalancer: max_sessions_per_user: 2 holds
// over the replicas; a killed replica's place frees within the lease.
func TestFleetSessionsPerUserThroughBalancer(t *testing.T) {
	requireInterop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv := testredis.Start(t)
	f := Start(ctx, t, Options{ExtraFor: fleetSection(srv, "closed"), Limits: map[string]any{"max_sessions_per_user": 2}})
	held := map[int]bool{}
	for i := range 2 {
		c, code := f.dialCtl(t)
		if code != 220 {
			t.Fatalf("session %d: greeting %d", i+1, code)
		}
		if code, text := c.login(f.User.Name, f.User.Password); code != 230 {
			t.Fatalf("session %d: %d %q", i+1, code, text)
		}
	}
	for _, r := range f.Replicas {
		if len(r.LogLines("login succeeded")) > 0 {
			held[r.Index] = true
		}
	}
	if len(held) != 2 {
		t.Fatalf("the two sessions are on %d replicas, want two distinct (leastconn)", len(held))
	}
	// The third, on the third replica (fewest connections), is refused.
	c, code := f.dialCtl(t)
	if code != 220 {
		t.Fatalf("third session: greeting %d", code)
	}
	if code, text := c.login(f.User.Name, f.User.Password); code != 421 || !strings.Contains(text, "Too many sessions for this user") {
		t.Fatalf("third session over the fleet: %d %q, want 421", code, text)
	}
	var victim *Replica
	for _, r := range f.Replicas {
		if held[r.Index] {
			victim = r
			break
		}
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// Within the lease (3s) the killed replica's place is gone from Redis
	// (the live replica's is renewed), ...
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	key := "ftpsgate:sess:user:{" + f.User.Name + "}"
	places := func() int64 {
		n, _ := rdb.ZCount(ctx, key, "("+strconv.FormatInt(time.Now().UnixMilli(), 10), "+inf").Result()
		return n
	}
	if n := places(); n != 2 {
		t.Fatalf("%d places in Redis right after the kill, want 2", n)
	}
	waitUntil(t, 3*time.Second+200*time.Millisecond, "the killed replica's place expires", f.Diagnostics, func() bool { return places() == 1 })
	t.Logf("the place expired %v after the kill", time.Since(killed))
	// ... and a login through the balancer (which takes the dead replica
	// out after its health checks) succeeds again.
	waitUntil(t, 15*time.Second, "a login through the balancer", f.Diagnostics, func() bool {
		conn, err := net.DialTimeout("tcp", f.Addr, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close()
		c, code := f.dialCtl(t)
		if code != 220 {
			return false
		}
		code, _ = c.login(f.User.Name, f.User.Password)
		_ = c.conn.Close()
		return code == 230
	})
	if n := places(); n != 2 {
		t.Errorf("%d places in Redis with two live sessions, want 2", n)
	}
}

// TestFleetRedisKilledMidRun: Redis dies during a download through the
// balancer: the download completes (SHA-256), new sessions follow
// on_store_error (closed: 421; local: served), and once Redis is back the
// fleet shares again.
func TestFleetRedisKilledMidRun(t *testing.T) {
	requireInterop(t)
	for _, mode := range []string{"closed", "local"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			srv := testredis.Start(t)
			f := Start(ctx, t, Options{ExtraFor: fleetSection(srv, mode), Limits: map[string]any{"max_sessions_per_user": 10}})
			src, sum := BigFile(t)
			f.Backend.Put(t, src, "big.bin")
			got := filepath.Join(t.TempDir(), "big.bin")
			done := make(chan Run, 1)
			go func() { done <- f.Curl(ctx, t, false, "--limit-rate", "16M", "-o", got, f.URL("big.bin")) }()
			time.Sleep(1500 * time.Millisecond)
			srv.Stop()
			for _, r := range f.Replicas {
				waitUntil(t, 3*time.Second, fmt.Sprintf("gw%d sees the store down", r.Index), f.Diagnostics, func() bool {
					return r.metric(t, "ftpsgate_fleet_store_up") == 0
				})
			}
			for i := range 3 {
				c, code := f.dialCtl(t)
				switch mode {
				case "closed":
					if code != 421 {
						t.Fatalf("closed, Redis down: new session %d got %d, want 421", i+1, code)
					}
				case "local":
					if code != 220 {
						t.Fatalf("local, Redis down: new session %d got %d, want 220", i+1, code)
					}
					if code, text := c.login(f.User.Name, f.User.Password); code != 230 {
						t.Fatalf("local, Redis down: login %d: %d %q", i+1, code, text)
					}
				}
			}
			r := <-done
			if r.Err != nil {
				t.Fatalf("the download during the outage: %v\n%s", r.Err, r)
			}
			if s := SHA256File(t, got); s != sum {
				t.Fatalf("the download during the outage: SHA-256 %s, want %s", s, sum)
			}
			srv.Restart()
			for _, r := range f.Replicas {
				waitUntil(t, 5*time.Second, fmt.Sprintf("gw%d sees the store back", r.Index), f.Diagnostics, func() bool {
					return r.metric(t, "ftpsgate_fleet_store_up") == 1
				})
				if n := len(r.LogLines("fleet: shared store back: sharing again")); n != 1 {
					t.Errorf("gw%d logged the recovery %d times, want once", r.Index, n)
				}
			}
			c, code := f.dialCtl(t)
			if code != 220 {
				t.Fatalf("Redis back: greeting %d", code)
			}
			if code, text := c.login(f.User.Name, f.User.Password); code != 230 {
				t.Fatalf("Redis back: login %d %q", code, text)
			}
		})
	}
}
