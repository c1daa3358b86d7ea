package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/auth"
	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/internal/testredis"
	"github.com/ftpsgate/ftpsgate/policy"
)

// replica is one gateway's view of the fleet in these tests.
type replica struct {
	st  *Store
	b   *Bans
	a   *Admission
	r   *Replay
	evs *eventLog
}

type eventLog struct {
	mu   sync.Mutex
	bans []policy.BanEvent
	all  []events.Event
}

func (l *eventLog) Emit(e events.Event) { l.mu.Lock(); l.all = append(l.all, e); l.mu.Unlock() }

func (l *eventLog) onBan(e policy.BanEvent) { l.mu.Lock(); l.bans = append(l.bans, e); l.mu.Unlock() }

func (l *eventLog) states() (out []events.StoreState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.all {
		if s, ok := e.(events.StoreState); ok {
			out = append(out, s)
		}
	}
	return out
}

func newReplica(t *testing.T, srv *testredis.Server, name string, mode Mode, limits policy.Limits) *replica {
	t.Helper()
	evs := &eventLog{}
	st, err := New(Config{Addresses: []string{srv.Addr}, Replica: name, OnStoreError: mode, Lease: 3 * time.Second, KeyPrefix: "t:"}, zerolog.New(zerolog.NewTestWriter(t)), evs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	b, err := NewBans(st, policy.BanConfig{MaxFailures: 5, Window: time.Minute, Duration: time.Minute, MaxDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b.Subscribe(evs.onBan)
	return &replica{st: st, b: b, a: NewAdmission(st, limits, b), r: NewReplay(st), evs: evs}
}

// kill stops a replica as a crash would: no heartbeat, no release.
func (r *replica) kill() {
	r.st.stop()
	_ = r.st.rdb.Close()
}

func eventually(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func banned(r *replica, ip netip.Addr) bool { _, ok := r.b.Banned(ip); return ok }

var client = netip.MustParseAddr("192.0.2.7")

// waitSubscribed waits until every replica's channel subscription is live
// (a ban published before would be missed until the next re-sync).
func waitSubscribed(t *testing.T, rs ...*replica) {
	t.Helper()
	eventually(t, 5*time.Second, "subscriptions", func() bool {
		n, err := rs[0].st.rdb.PubSubNumSub(context.Background(), rs[0].st.channel()).Result()
		return err == nil && n[rs[0].st.channel()] >= int64(len(rs))
	})
}

func TestBanReachesEveryReplicaWithinASecond(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeClosed, policy.Limits{})
	b := newReplica(t, srv, "b", ModeClosed, policy.Limits{})
	c := newReplica(t, srv, "c", ModeClosed, policy.Limits{})
	waitSubscribed(t, a, b, c)
	// Five failures spread over the replicas ban the address.
	for i, r := range []*replica{a, b, c, a} {
		if r.b.Record(client, policy.KindLoginFailed) {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	start := time.Now()
	if !b.b.Record(client, policy.KindLoginFailed) {
		t.Fatal("five failures over three replicas did not ban")
	}
	for _, r := range []*replica{a, b, c} {
		eventually(t, time.Second-time.Since(start), "ban seen by "+r.st.replica, func() bool { return banned(r, client) })
		if _, err := r.a.Admit(client); !errors.Is(err, policy.ErrBanned) {
			t.Fatalf("%s admitted a banned address: %v", r.st.replica, err)
		}
	}
	list := c.b.List()
	if len(list) != 1 || list[0].IP != client || list[0].Offences != 1 || list[0].Reason != "5 failures within 1m0s (login_failed)" {
		t.Fatalf("List = %+v", list)
	}
	if ttl := a.st.rdb.PTTL(context.Background(), a.b.keys(client)[0]).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("the ban's key TTL is %v, want its duration", ttl)
	}

	// An unban on one replica lifts it everywhere, and pardons.
	start = time.Now()
	if !c.b.Unban(client) {
		t.Fatal("Unban: not banned")
	}
	for _, r := range []*replica{a, b, c} {
		eventually(t, time.Second-time.Since(start), "unban seen by "+r.st.replica, func() bool { return !banned(r, client) })
	}
	if n := len(a.b.List()); n != 0 {
		t.Fatalf("%d bans after unban", n)
	}
	// A manual ban keeps the escalation history (pardoned: 0) and spreads.
	if _, err := a.b.Ban(client, time.Hour, "admin"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "manual ban on c", func() bool { return banned(c, client) })
}

func TestEscalation(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeClosed, policy.Limits{})
	waitSubscribed(t, a)
	for range 5 {
		a.b.Record(client, policy.KindLoginFailed)
	}
	// The replica hears its own ban on the channel too: let it, before
	// ending the ban by hand.
	eventually(t, time.Second, "the ban's message", func() bool { return a.b.applied.Load() == 1 })
	first := a.b.List()
	if len(first) != 1 || first[0].Until.Sub(first[0].Since) != time.Minute {
		t.Fatalf("first ban %+v", first)
	}
	// The ban ends (by hand here: delete the key as its TTL would).
	a.st.rdb.Del(context.Background(), a.b.keys(client)[0])
	a.b.cache.Unban(client)
	for range 5 {
		a.b.Record(client, policy.KindLoginFailed)
	}
	second := a.b.List()
	if len(second) != 1 || second[0].Offences != 2 || second[0].Until.Sub(second[0].Since) != 2*time.Minute {
		t.Fatalf("second ban %+v, want offence 2 for 2m", second)
	}
}

func TestSessionCapsAcrossReplicasWithLeases(t *testing.T) {
	srv := testredis.Start(t)
	lim := policy.Limits{MaxSessionsPerIP: 3, MaxSessionsPerUser: 2}
	a := newReplica(t, srv, "a", ModeClosed, lim)
	b := newReplica(t, srv, "b", ModeClosed, lim)

	t1, err := a.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := a.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	t3, err := b.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.a.Admit(client); !errors.Is(err, policy.ErrTooManyFromIP) {
		t.Fatalf("fourth session of the address over two replicas: %v, want ErrTooManyFromIP", err)
	}
	if err := t1.Login("alice"); err != nil {
		t.Fatal(err)
	}
	if err := t2.Login("alice"); err != nil {
		t.Fatal(err)
	}
	if err := t3.Login("alice"); !errors.Is(err, policy.ErrTooManyForUser) {
		t.Fatalf("third session of alice on another replica: %v, want ErrTooManyForUser", err)
	}
	// A released session frees its places at once.
	t3.Release()
	t2.Release()
	t4, err := b.a.Admit(client)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := t4.Login("alice"); err != nil {
		t.Fatalf("after release: %v", err)
	}
	// A replica that dies holding places frees them within the lease.
	if a.st.Leases() != 2 {
		t.Fatalf("a holds %d leases, want 2", a.st.Leases())
	}
	start := time.Now()
	a.kill()
	t5, err := b.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := t5.Login("alice"); !errors.Is(err, policy.ErrTooManyForUser) {
		t.Fatalf("the dead replica's place was freed at once: %v", err)
	}
	t5.Release()
	// The live replica's heartbeat keeps its place past the lease.
	eventually(t, 3*time.Second+time.Second, "the dead replica's places expire", func() bool {
		t6, err := b.a.Admit(client)
		if err != nil {
			return false
		}
		defer t6.Release()
		return t6.Login("alice") == nil
	})
	t.Logf("freed after %v", time.Since(start))
	time.Sleep(3 * time.Second) // longer than a lease: t4 still counts
	if n, _ := b.a.UserPlaces(context.Background(), "alice"); n != 1 {
		t.Fatalf("alice holds %d places after a lease with heartbeats, want 1 (t4)", n)
	}
	t4.Release()
	if n, _ := b.a.UserPlaces(context.Background(), "alice"); n != 0 {
		t.Fatalf("alice holds %d places after release", n)
	}
}

func TestConnRateAcrossReplicas(t *testing.T) {
	srv := testredis.Start(t)
	lim := policy.Limits{ConnRate: 0.01, ConnBurst: 2}
	a := newReplica(t, srv, "a", ModeClosed, lim)
	b := newReplica(t, srv, "b", ModeClosed, lim)
	for _, r := range []*replica{a, b} {
		tk, err := r.a.Admit(client)
		if err != nil {
			t.Fatal(err)
		}
		tk.Release()
	}
	if _, err := a.a.Admit(client); !errors.Is(err, policy.ErrConnRate) {
		t.Fatalf("third connection over two replicas with burst 2: %v, want ErrConnRate", err)
	}
}

func TestTOTPReplayRefusedAcrossReplicas(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeClosed, policy.Limits{})
	b := newReplica(t, srv, "b", ModeClosed, policy.Limits{})
	fresh, err := a.r.Use("alice", 1234, time.Minute)
	if err != nil || !fresh {
		t.Fatalf("first use: %v %v", fresh, err)
	}
	fresh, err = b.r.Use("alice", 1234, time.Minute)
	if err != nil || fresh {
		t.Fatalf("replay on another replica: fresh %v, err %v", fresh, err)
	}
	if fresh, _ := b.r.Use("bob", 1234, time.Minute); !fresh {
		t.Fatal("another user's code refused")
	}
}

func TestStoreDownClosed(t *testing.T) {
	srv := testredis.Start(t)
	lim := policy.Limits{MaxSessionsPerIP: 5, MaxSessionsPerUser: 5}
	a := newReplica(t, srv, "a", ModeClosed, lim)
	b := newReplica(t, srv, "b", ModeClosed, lim)
	waitSubscribed(t, a, b)
	running, err := a.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	eventually(t, 2*time.Second, "a sees the store down", func() bool { return !a.st.Up() })
	if _, err := a.a.Admit(client); !errors.Is(err, policy.ErrStoreDown) {
		t.Fatalf("closed mode, store down: Admit %v, want ErrStoreDown", err)
	}
	if err := running.Login("alice"); !errors.Is(err, policy.ErrStoreDown) {
		t.Fatalf("closed mode, store down: Login %v, want ErrStoreDown", err)
	}
	if _, err := a.r.Use("alice", 1, time.Minute); !errors.Is(err, ErrDown) {
		t.Fatalf("closed mode, store down: TOTP %v", err)
	}
	running.Release() // no wait on the dead store
	eventually(t, time.Second, "the down event", func() bool { return len(a.evs.states()) == 1 })
	if st := a.evs.states(); len(st) != 1 || st[0].Up {
		t.Fatalf("state events %+v, want one down", st)
	}
	srv.Restart()
	eventually(t, 3*time.Second, "a sees the store back", a.st.Up)
	tk, err := a.a.Admit(client)
	if err != nil {
		t.Fatalf("store back: %v", err)
	}
	tk.Release()
	eventually(t, time.Second, "the up event", func() bool { return len(a.evs.states()) == 2 })
	if st := a.evs.states(); len(st) != 2 || !st[1].Up {
		t.Fatalf("state events %+v, want down then up", st)
	}
}

func TestStoreDownLocalThenResync(t *testing.T) {
	srv := testredis.Start(t)
	lim := policy.Limits{MaxSessionsPerIP: 5}
	a := newReplica(t, srv, "a", ModeLocal, lim)
	b := newReplica(t, srv, "b", ModeLocal, lim)
	waitSubscribed(t, a, b)
	other := netip.MustParseAddr("198.51.100.9")
	if _, err := b.b.Ban(other, time.Hour, "before the outage"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "a has the ban", func() bool { return banned(a, other) })
	srv.Stop()
	eventually(t, 2*time.Second, "a sees the store down", func() bool { return !a.st.Up() })
	// Local mode: service goes on with this replica's state.
	tk, err := a.a.Admit(client)
	if err != nil {
		t.Fatalf("local mode, store down: %v", err)
	}
	tk.Release()
	if fresh, err := a.r.Use("alice", 7, time.Minute); err != nil || !fresh {
		t.Fatalf("local mode TOTP: %v %v", fresh, err)
	}
	if fresh, _ := a.r.Use("alice", 7, time.Minute); fresh {
		t.Fatal("local mode: replay on the same replica accepted")
	}
	if !banned(a, other) {
		t.Fatal("the cache lost a ban while the store is down")
	}
	for range 5 {
		a.b.Record(client, policy.KindLoginFailed)
	}
	if !banned(a, client) {
		t.Fatal("local mode: five failures did not ban on the replica")
	}
	// Redis comes back empty (no persistence in the test): the ban made
	// while it was down is pushed, the one Redis lost is dropped.
	srv.Restart()
	eventually(t, 3*time.Second, "b learns the ban made while the store was down", func() bool { return banned(b, client) })
	eventually(t, 3*time.Second, "a's cache re-synced", func() bool { return !banned(a, other) })
	if !banned(a, client) {
		t.Fatal("a lost its own ban at the re-sync")
	}
}

func TestLockoutAcrossReplicas(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeClosed, policy.Limits{})
	b := newReplica(t, srv, "b", ModeClosed, policy.Limits{})
	p := policy.LockoutPolicy{Threshold: 3, LockAfter: 3, LockFor: time.Hour, Window: time.Minute}
	la := NewLockout(a.st, p, auth.LockoutThrottle(policy.NewLockout(p)))
	lb := NewLockout(b.st, p, auth.LockoutThrottle(policy.NewLockout(p)))
	ctx := context.Background()
	fail := func(l *Lockout) {
		t.Helper()
		at, err := l.Begin(ctx, "Alice")
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		at.Done(auth.Failed)
	}
	fail(la)
	fail(lb)
	// A success forgets the failures in the fleet.
	at, err := la.Begin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	at.Done(auth.Succeeded)
	fail(la)
	fail(lb)
	fail(la) // the third since the success, over two replicas: locked
	for _, l := range []*Lockout{la, lb} {
		if _, err := l.Begin(ctx, "ALICE"); !errors.Is(err, auth.ErrLocked) {
			t.Fatalf("after three failures over two replicas: %v, want ErrLocked", err)
		}
	}
	if _, err := lb.Begin(ctx, "bob"); err != nil {
		t.Fatalf("another user: %v", err)
	}
	if err := lb.Unlock("alice"); err != nil {
		t.Fatal(err)
	}
	if at, err := la.Begin(ctx, "alice"); err != nil {
		t.Fatalf("after Unlock on the other replica: %v", err)
	} else {
		at.Done(auth.Abandoned)
	}
	srv.Stop()
	if _, err := la.Begin(ctx, "alice"); !errors.Is(err, ErrDown) {
		t.Fatalf("closed, store down: %v, want ErrDown", err)
	}
}

// TestResyncKeepsWhatArrivesMeanwhile: a ban that arrives on the channel
// while a re-sync reads Redis is not undone by the re-sync (which read
// Redis before it).
func TestResyncKeepsWhatArrivesMeanwhile(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeClosed, policy.Limits{})
	late := netip.MustParseAddr("203.0.113.5")
	now := time.Now()
	a.b.afterFetch = func() {
		a.b.apply(fmt.Sprintf(`{"op":"ban","from":"b","ban":{"ip":%q,"since":%d,"until":%d,"reason":"late","offences":1}}`,
			late, now.UnixMilli(), now.Add(time.Hour).UnixMilli()))
	}
	a.b.resync()
	if !banned(a, late) {
		t.Fatal("the re-sync dropped a ban that arrived while it read Redis")
	}
}

// TestOperatorChangesDuringOutage: while the store does not answer (its
// clients paused, its data kept), an unban and a ban made through one
// replica change its cache at once and the fleet when the store is back.
func TestOperatorChangesDuringOutage(t *testing.T) {
	srv := testredis.Start(t)
	a := newReplica(t, srv, "a", ModeLocal, policy.Limits{})
	b := newReplica(t, srv, "b", ModeLocal, policy.Limits{})
	waitSubscribed(t, a, b)
	old, fresh := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	if _, err := b.b.Ban(old, time.Hour, "before"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "a has the ban", func() bool { return banned(a, old) })
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 1500, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	a.b.Record(client, policy.KindLoginFailed) // times out: down
	if a.st.Up() {
		t.Fatal("the store answered while paused")
	}
	if !a.b.Unban(old) || banned(a, old) {
		t.Fatal("unban while down: not lifted in the replica")
	}
	if _, err := a.b.Ban(fresh, time.Hour, "during"); err != nil || !banned(a, fresh) {
		t.Fatalf("ban while down: %v", err)
	}
	eventually(t, 5*time.Second, "b hears the unban made while the store was down", func() bool { return !banned(b, old) })
	eventually(t, time.Second, "b hears the ban made while the store was down", func() bool { return banned(b, fresh) })
	if banned(a, old) || !banned(a, fresh) {
		t.Fatal("a's re-sync undid its own changes")
	}
	if l := a.b.List(); len(l) != 1 || l[0].IP != fresh {
		t.Fatalf("Redis holds %+v, want only the ban made during the outage", l)
	}
}
