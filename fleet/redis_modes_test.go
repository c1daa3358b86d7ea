package fleet

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/internal/testredis"
	"github.com/ftpsgate/ftpsgate/policy"
)

// docsACL is the ACL docs/fleet.md recommends for the fleet's Redis user.
const docsACL = "~ftpsgate:* &ftpsgate:* +@read +@write +@scripting +@pubsub +@connection +scan +time"

// TestTLSAndACLUser: the store reaches Redis over TLS with a client
// certificate, as an ACL user restricted as docs/fleet.md says, and every
// shared decision works so; a wrong password leaves the store down (closed:
// refusing) without the password in any log line.
func TestTLSAndACLUser(t *testing.T) {
	srv := testredis.StartWith(t, testredis.Options{TLS: true, User: "ftpsgate", Password: "redis-s3cret", ACL: docsACL})
	logs := &strings.Builder{}
	cfg := func(pw string) Config {
		return Config{Addresses: []string{srv.Addr}, Username: "ftpsgate", Password: pw, Lease: 3 * time.Second,
			TLS: TLS{Enabled: true, CAFile: srv.CAFile, CertFile: srv.ClientCertFile, KeyFile: srv.ClientKeyFile}}
	}
	var rs []*replica
	for _, name := range []string{"a", "b"} {
		c := cfg("redis-s3cret")
		c.Replica = name
		st, err := New(c, zerolog.New(zerolog.NewTestWriter(t)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if !st.Up() {
			t.Fatal("the store is down over TLS with the ACL user")
		}
		b, err := NewBans(st, policy.BanConfig{MaxFailures: 2, Window: time.Minute, Duration: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		lim := policy.Limits{MaxSessionsPerIP: 1, ConnRate: 100}
		rs = append(rs, &replica{st: st, b: b, a: NewAdmission(st, lim, b), r: NewReplay(st)})
	}
	a, b := rs[0], rs[1]
	waitSubscribed(t, a, b)
	tk, err := a.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.a.Admit(client); !errors.Is(err, policy.ErrTooManyFromIP) {
		t.Fatalf("lease over TLS: %v", err)
	}
	a.st.renewAll()
	tk.Release()
	if fresh, err := a.r.Use("u", 1, time.Minute); err != nil || !fresh {
		t.Fatalf("TOTP over TLS: %v %v", fresh, err)
	}
	a.b.Record(client, policy.KindLoginFailed)
	b.b.Record(client, policy.KindLoginFailed)
	eventually(t, time.Second, "ban over TLS reaches a", func() bool { return banned(a, client) })
	if l := b.b.List(); len(l) != 1 {
		t.Fatalf("List over TLS: %+v", l)
	}
	if !a.b.Unban(client) {
		t.Fatal("Unban over TLS")
	}
	for _, r := range rs {
		if !r.st.Up() {
			t.Fatalf("%s: a call was refused by the ACL (the store went down)", r.st.replica)
		}
	}

	// A wrong password: down from the start, closed refuses, no secret logged.
	c := cfg("wrong-s3cret")
	c.Replica = "c"
	st, err := New(c, zerolog.New(logs), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bans, _ := NewBans(st, policy.BanConfig{})
	if _, err := NewAdmission(st, policy.Limits{MaxSessionsPerIP: 1}, bans).Admit(client); !errors.Is(err, policy.ErrStoreDown) {
		t.Fatalf("wrong password: Admit %v, want ErrStoreDown", err)
	}
	if strings.Contains(logs.String(), "s3cret") || !strings.Contains(logs.String(), "shared store down") {
		t.Fatalf("log: %s", logs.String())
	}
}

// TestSentinel: the store finds the master through a Sentinel
// (fleet.redis.master_name) and shares through it.
func TestSentinel(t *testing.T) {
	srv := testredis.Start(t)
	sn := testredis.StartSentinel(t, srv)
	var rs []*replica
	for _, name := range []string{"a", "b"} {
		st, err := New(Config{Addresses: []string{sn.Addr}, MasterName: sn.MasterName, Replica: name}, zerolog.New(zerolog.NewTestWriter(t)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		b, err := NewBans(st, policy.BanConfig{})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &replica{st: st, b: b})
	}
	waitSubscribed(t, rs...)
	if _, err := rs[0].b.Ban(client, time.Hour, "through a sentinel"); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, "the ban through the sentinel", func() bool { return banned(rs[1], client) })
}

// TestCluster: on a Redis Cluster of three masters every script's keys
// share a slot (hash tags), the channel reaches every replica, and List
// walks every master.
func TestCluster(t *testing.T) {
	addrs := testredis.StartCluster(t)
	var rs []*replica
	lim := policy.Limits{MaxSessionsPerIP: 1, MaxSessionsPerUser: 1, ConnRate: 100}
	for _, name := range []string{"a", "b"} {
		st, err := New(Config{Addresses: addrs, Replica: name, Lease: 3 * time.Second}, zerolog.New(zerolog.NewTestWriter(t)), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		if !st.Up() {
			t.Fatal("down on the cluster")
		}
		b, err := NewBans(st, policy.BanConfig{MaxFailures: 2})
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, &replica{st: st, b: b, a: NewAdmission(st, lim, b), r: NewReplay(st)})
	}
	a, b := rs[0], rs[1]
	// Both follow the channel (PUBSUB NUMSUB counts a node's own subscribers).
	eventually(t, 5*time.Second, "subscriptions", func() bool {
		var mu sync.Mutex
		var n int64
		_ = a.st.rdb.(*redis.ClusterClient).ForEachShard(context.Background(), func(ctx context.Context, c *redis.Client) error {
			m, err := c.PubSubNumSub(ctx, a.st.channel()).Result()
			mu.Lock()
			n += m[a.st.channel()]
			mu.Unlock()
			return err
		})
		return n >= 2
	})
	// Bans on addresses that hash to different slots, all listed.
	ips := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3"), netip.MustParseAddr("2001:db8::1")}
	for _, ip := range ips {
		a.b.Record(ip, policy.KindLoginFailed)
		if !b.b.Record(ip, policy.KindLoginFailed) {
			t.Fatalf("%s: not banned after two failures over two replicas", ip)
		}
		eventually(t, time.Second, "the ban reaches a", func() bool { return banned(a, ip) })
	}
	if l := a.b.List(); len(l) != len(ips) {
		t.Fatalf("List on the cluster: %d bans, want %d", len(l), len(ips))
	}
	tk, err := a.a.Admit(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Login("alice"); err != nil {
		t.Fatal(err)
	}
	a.st.renewAll()
	if _, err := b.a.Admit(client); !errors.Is(err, policy.ErrTooManyFromIP) {
		t.Fatalf("lease on the cluster: %v", err)
	}
	tk.Release()
	if fresh, err := a.r.Use("u", 1, time.Minute); err != nil || !fresh {
		t.Fatalf("TOTP on the cluster: %v %v", fresh, err)
	}
	if !b.b.Unban(ips[0]) {
		t.Fatal("Unban on the cluster")
	}
	eventually(t, time.Second, "the unban reaches a", func() bool { return !banned(a, ips[0]) })
	for _, r := range rs {
		if !r.st.Up() {
			t.Fatalf("%s: a call failed on the cluster", r.st.replica)
		}
	}
}
