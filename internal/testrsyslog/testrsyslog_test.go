package testrsyslog

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestStart: a plain TCP and a TLS message, octet-counted, come back
// from the output file with their fields.
func TestStart(t *testing.T) {
	s := Start(t)
	c, err := net.Dial("tcp", s.TCPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "<134>1 2026-11-30T00:00:00.000001Z host1 app 42 id1 - hello tcp"
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	tc, err := tls.Dial("tcp", s.TLSAddr, &tls.Config{RootCAs: mustPool(t, s.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	msg2 := "<134>1 2026-11-30T00:00:00.000002Z host1 app 42 id2 - hello tls"
	fmt.Fprintf(tc, "%d %s", len(msg2), msg2)
	lines := s.WaitLines(t, 2, 10*time.Second)
	got := map[string]Line{}
	for _, l := range lines {
		got[l.MsgID] = l
	}
	if l := got["id1"]; l.Msg != "hello tcp" || l.Input != "imptcp" || l.PRI != 134 || l.Hostname != "host1" || l.AppName != "app" || l.ProcID != "42" {
		t.Errorf("tcp: %+v", l)
	}
	if l := got["id2"]; l.Msg != "hello tls" || l.Input != "imtcp" {
		t.Errorf("tls: %+v", l)
	}
}
