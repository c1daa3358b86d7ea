package e2e

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/admin"
	"github.com/ftpsgate/ftpsgate/fleet"
	"github.com/ftpsgate/ftpsgate/internal/testredis"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// member is one gateway of a fleet sharing a Redis.
type member struct {
	*gateway
	st   *fleet.Store
	bans *fleet.Bans
}

// startFleet starts n gateways (each in front of its own demo backend, with
// the same user) that share srv's Redis.
func startFleet(t *testing.T, srv *testredis.Server, n int, mode fleet.Mode, limits policy.Limits, opts ...option) []*member {
	t.Helper()
	banCfg := policy.BanConfig{MaxFailures: 5, Window: time.Minute, Duration: time.Hour}
	var ms []*member
	for i := range n {
		logs := &testproc.SyncBuffer{}
		st, err := fleet.New(fleet.Config{Addresses: []string{srv.Addr}, Replica: string(rune('a' + i)), OnStoreError: mode, Lease: 3 * time.Second},
			zerolog.New(logs), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = st.Close()
			if t.Failed() {
				t.Logf("fleet log of %s:\n%s", st.Replica(), logs.String())
			}
		})
		bans, err := fleet.NewBans(st, banCfg)
		if err != nil {
			t.Fatal(err)
		}
		adm := fleet.NewAdmission(st, limits, bans)
		g := startGatewayWith(t, []proxy.Option{proxy.WithBans(bans), proxy.WithAdmission(adm)},
			append([]option{func(c *proxy.Config) { c.Bans, c.Limits = banCfg, limits }}, opts...)...)
		ms = append(ms, &member{gateway: g, st: st, bans: bans})
	}
	// Every member follows the ban channel before the test starts.
	deadline := time.Now().Add(5 * time.Second)
	for {
		ch := "ftpsgate:bans"
		n, err := ms[0].st.Client().PubSubNumSub(context.Background(), ch).Result()
		if err == nil && n[ch] >= int64(len(ms)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the members did not subscribe to the ban channel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ms
}

func within(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// greets reports whether a connection from 127.0.0.1 to m gets 220.
func greets(t *testing.T, m *member) bool {
	_, rep := dialFrom(t, "127.0.0.1", m.addr("explicit"))
	return rep.Code == wire.StatusReady
}

// TestFleetBans: five wrong passwords spread over three gateways ban the
// address on all three within a second; lifting the ban through one
// gateway's admin API (what `ftpsgate bans remove` calls) lets the address
// in on all three.
func TestFleetBans(t *testing.T) {
	srv := testredis.Start(t)
	ms := startFleet(t, srv, 3, fleet.ModeClosed, policy.Limits{}, plainLogins(false))
	for i := range 5 {
		c, rep := dialFrom(t, "127.0.0.1", ms[i%3].addr("explicit"))
		if rep.Code != wire.StatusReady {
			t.Fatalf("attempt %d on %s: greeting %d", i+1, ms[i%3].st.Replica(), rep.Code)
		}
		c.do("USER "+user, wire.StatusUserOK)
		c.do("PASS wrong", wire.StatusNotLoggedIn)
		if i == 4 {
			c.expect(wire.StatusNotAvailable) // banned: the session ends
		}
	}
	start := time.Now()
	for _, m := range ms {
		within(t, time.Second-time.Since(start), "gateway "+m.st.Replica()+" refuses the banned address", func() bool { return !greets(t, m) })
	}
	t.Logf("banned on every gateway within %v", time.Since(start))

	// The admin API of the third gateway lists the fleet's ban and lifts it.
	sock := filepath.Join(t.TempDir(), "admin.sock")
	api, err := admin.New(admin.Config{Address: "unix:" + sock}, ms[2].bans, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer api.Shutdown(context.Background())
	cl, err := admin.NewClient("unix:"+sock, "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := cl.ListBans(ctx)
	if err != nil || len(list) != 1 || list[0].IP != netip.MustParseAddr("127.0.0.1") || !strings.Contains(list[0].Reason, "5 failures") {
		t.Fatalf("ListBans = %+v, %v", list, err)
	}
	if err := cl.RemoveBan(ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	for _, m := range ms {
		within(t, time.Second-time.Since(start), "gateway "+m.st.Replica()+" lets the address in again", func() bool { return greets(t, m) })
	}
}

// TestFleetSessionsPerUser: limits.max_sessions_per_user holds across the
// gateways.
func TestFleetSessionsPerUser(t *testing.T) {
	srv := testredis.Start(t)
	ms := startFleet(t, srv, 3, fleet.ModeClosed, policy.Limits{MaxSessionsPerUser: 2}, plainLogins(false))
	login := func(m *member) (*rawClient, wire.Reply) {
		c, rep := dialFrom(t, "127.0.0.1", m.addr("explicit"))
		if rep.Code != wire.StatusReady {
			t.Fatalf("greeting %d", rep.Code)
		}
		c.do("USER "+user, wire.StatusUserOK)
		c.send("PASS " + password)
		return c, c.read()
	}
	first, rep := login(ms[0])
	if rep.Code != wire.StatusLoggedIn {
		t.Fatalf("first login: %d", rep.Code)
	}
	if _, rep := login(ms[1]); rep.Code != wire.StatusLoggedIn {
		t.Fatalf("second login: %d", rep.Code)
	}
	if _, rep := login(ms[2]); rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.String(), "Too many sessions for this user") {
		t.Fatalf("third login on the third gateway: %q, want 421", rep.String())
	}
	first.do("QUIT", wire.StatusClosing)
	within(t, 2*time.Second, "a place frees when a session ends", func() bool {
		c, rep := login(ms[2])
		defer c.conn.Close()
		return rep.Code == wire.StatusLoggedIn
	})
}

// TestFleetStoreDownMidTransfer: Redis dies during a download; the
// download completes; new sessions follow fleet.on_store_error; when Redis
// is back, the fleet shares again.
func TestFleetStoreDownMidTransfer(t *testing.T) {
	for _, mode := range []fleet.Mode{fleet.ModeClosed, fleet.ModeLocal} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := testredis.Start(t)
			ms := startFleet(t, srv, 2, mode, policy.Limits{MaxSessionsPerUser: 4, SessionBandwidth: 2 << 20})
			data := randomBytes(t, 5<<20)
			if err := os.WriteFile(filepath.Join(ms[0].root, "big.bin"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			waiting := dialRaw(t, ms[1].addr("implicit"), true) // admitted before the outage, logs in during it
			c := dial(t, ms[0].gateway, "explicit")
			r, err := c.Retr("big.bin")
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan []byte)
			go func() {
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(r)
				_ = r.Close()
				got <- buf.Bytes()
			}()
			time.Sleep(500 * time.Millisecond)
			srv.Stop()
			within(t, 2*time.Second, "the gateways see the store down", func() bool { return !ms[0].st.Up() && !ms[1].st.Up() })

			_, rep := dialFrom(t, "127.0.0.1", ms[1].addr("explicit"))
			waiting.do("USER "+user, wire.StatusUserOK)
			waiting.send("PASS " + password)
			login := waiting.read()
			switch mode {
			case fleet.ModeClosed:
				if rep.Code != wire.StatusNotAvailable || !strings.Contains(rep.String(), "try again later") {
					t.Fatalf("closed, store down: a new session got %q, want 421", rep.String())
				}
				if login.Code != wire.StatusNotAvailable || !strings.Contains(login.String(), "try again later") {
					t.Fatalf("closed, store down: a login got %q, want 421", login.String())
				}
			case fleet.ModeLocal:
				if rep.Code != wire.StatusReady {
					t.Fatalf("local, store down: a new session got %d, want 220", rep.Code)
				}
				dial(t, ms[1].gateway, "explicit") // and logs in
				if login.Code != wire.StatusLoggedIn {
					t.Fatalf("local, store down: a login got %q", login.String())
				}
			}
			select {
			case b := <-got:
				if sum(b) != sum(data) {
					t.Fatalf("the download cut by the outage: %d of %d bytes", len(b), len(data))
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the download hangs")
			}

			srv.Restart()
			within(t, 5*time.Second, "the gateways see the store back", func() bool { return ms[0].st.Up() && ms[1].st.Up() })
			dial(t, ms[1].gateway, "explicit")
		})
	}
}

// TestFleetStoreHangs: Redis stops answering (its clients paused 5 s)
// during a download: the download completes; a new session is answered
// (421, closed) after the store's deadline, not when Redis answers again.
func TestFleetStoreHangs(t *testing.T) {
	srv := testredis.Start(t)
	ms := startFleet(t, srv, 2, fleet.ModeClosed, policy.Limits{MaxSessionsPerIP: 10, SessionBandwidth: 2 << 20})
	data := randomBytes(t, 4<<20)
	if err := os.WriteFile(filepath.Join(ms[0].root, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ms[0].gateway, "explicit")
	r, err := c.Retr("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r)
		_ = r.Close()
		got <- buf.Bytes()
	}()
	time.Sleep(300 * time.Millisecond)
	pauser := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer pauser.Close()
	const pause = 5 * time.Second
	if err := pauser.Do(context.Background(), "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	_, rep := dialFrom(t, "127.0.0.1", ms[1].addr("explicit"))
	if waited := time.Since(paused); rep.Code != wire.StatusNotAvailable || waited >= pause {
		t.Fatalf("a new session while Redis hangs: %q after %v, want 421 before Redis answers again (%v)", rep.String(), waited, pause)
	}
	select {
	case b := <-got:
		if sum(b) != sum(data) {
			t.Fatalf("the download cut while Redis hangs: %d of %d bytes", len(b), len(data))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the download hangs")
	}
}
