package icap_test

import (
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/icap"
)

// WithPolicy: a client with a policy's settings shares its parent's
// servers and connections, and its own directions and on_error apply.
func TestWithPolicy(t *testing.T) {
	var conns atomic.Int32
	srv := fakeServer(t, func(c *fakeConn) {
		conns.Add(1)
		for {
			r, err := c.readReq()
			if err != nil {
				return
			}
			if r.Method == "OPTIONS" {
				_, _ = fmt.Fprintf(c, optionsReply, "")
				continue
			}
			_, _ = io.WriteString(c, "ICAP/1.0 204 No Content\r\nEncapsulated: null-body=0\r\n\r\n")
		}
	})
	base := newClient(t, icap.Config{Servers: []icap.Server{srv}, Timeout: 2 * time.Second})
	if p := base.Policy(); p.Directions != icap.Both || p.OnError != icap.Default {
		t.Fatalf("base policy %+v", p)
	}
	up := base.WithPolicy(icap.Policy{Directions: icap.Uploads})
	down := meta
	down.Direction = filter.Download
	if len(up.Filters(down)) != 0 || len(up.Filters(meta)) != 1 || len(base.Filters(down)) != 1 {
		t.Fatal("the policy's directions do not apply to its client alone")
	}
	for _, c := range []*icap.Client{base, up, base} {
		if v, err := feed(t, c.NewFilter(meta), []byte("clean"), 2); err != nil || v.Veto {
			t.Fatalf("clean: %+v %v", v, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for three scans: the policy's client does not share the pool", n)
	}

	// The scanner unreachable: on_error block for the base, allow for the
	// policy.
	dead, err := icap.ParseServer("icap://" + deadAddr(t) + "/avscan")
	if err != nil {
		t.Fatal(err)
	}
	strict := newClient(t, icap.Config{Servers: []icap.Server{dead}, Timeout: time.Second})
	lax := strict.WithPolicy(icap.Policy{Directions: icap.Both, OnError: icap.Allow})
	if v, err := feed(t, strict.NewFilter(meta), []byte("data"), 2); err != nil || !v.Veto || v.Code != 451 {
		t.Fatalf("on_error block: %+v %v", v, err)
	}
	if v, err := feed(t, lax.NewFilter(meta), []byte("data"), 2); err != nil || v.Veto {
		t.Fatalf("the policy's on_error allow: %+v %v", v, err)
	}
}
