package admin

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

type fakeBackends []BackendInfo

func (f fakeBackends) Backends() []BackendInfo { return f }

// TestBackendsEndpoint: GET /v1/backends lists what the gateway gives,
// through the client, behind the token like every /v1 endpoint; without a
// lister it is 404.
func TestBackendsEndpoint(t *testing.T) {
	since := time.Unix(1700000000, 0).UTC()
	list := fakeBackends{
		{Name: "a", Address: "10.0.0.1:21", Pools: []string{"shared"}, State: "up", Checked: true, Since: since, Sessions: 3},
		{Name: "lan", Address: "10.1.0.1:21", Via: "dc1", State: "down", Checked: true, Since: since, LastError: "banner: EOF",
			Agents: []AgentInfo{{Name: "agent-1", Address: "192.0.2.7:40000", Pin: "q83vEjRWeJA=", Connected: since, Streams: 2, State: "draining"}}},
		{Name: "c", Address: "10.0.0.3:21", State: "unknown", Since: since},
	}
	s, _ := startServer(t, Config{Address: "127.0.0.1:0", TokenFile: writeToken(t, "tok\n")}, WithBackends(list))
	c, err := NewClient(s.Addr(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ListBackends(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Pools[0] != "shared" || got[0].Sessions != 3 || !got[0].Since.Equal(since) ||
		got[1].State != "down" || got[1].LastError != "banner: EOF" || len(got[1].Agents) != 1 || got[1].Agents[0].Pin != "q83vEjRWeJA=" || got[1].Agents[0].State != "draining" ||
		got[2].State != "unknown" || got[2].Checked {
		t.Fatalf("ListBackends = %+v", got)
	}
	bad, _ := NewClient(s.Addr(), "wrong")
	if _, err := bad.ListBackends(context.Background()); err == nil {
		t.Fatal("GET /v1/backends without the token worked")
	}

	s2, _ := startServer(t, Config{Address: "unix:" + filepath.Join(t.TempDir(), "a.sock")})
	c2, _ := NewClient(s2.Addr(), "")
	var apiErr *APIError
	if _, err := c2.ListBackends(context.Background()); err == nil || !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("without a lister: %v, want 404", err)
	}
}
