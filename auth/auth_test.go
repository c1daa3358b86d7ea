package auth

import (
	"context"
	"net/netip"
	"testing"
)

func TestPassthrough(t *testing.T) {
	var a Authenticator = Passthrough{}
	res, err := a.Authenticate(context.Background(), Request{User: "alice", Password: "pw", ClientIP: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Delegated || res.User != "alice" || res.Backend != (Credentials{User: "alice", Password: "pw"}) || len(res.Factors) != 0 {
		t.Fatalf("Passthrough = %+v", res)
	}
}
