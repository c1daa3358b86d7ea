package main

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/events"
	"github.com/ftpsgate/ftpsgate/nat"
)

// fakeReloader counts reloads and fails when told to.
type fakeReloader struct {
	mu   sync.Mutex
	n    int
	fail error
}

func (r *fakeReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return r.fail
}

// reloadEvents collects the ConfigReload events.
type reloadEvents struct {
	mu  sync.Mutex
	got []events.ConfigReload
}

func (s *reloadEvents) Emit(e events.Event) {
	if r, ok := e.(events.ConfigReload); ok {
		s.mu.Lock()
		s.got = append(s.got, r)
		s.mu.Unlock()
	}
}

// wait returns the n-th event, waiting for it.
func (s *reloadEvents) wait(t *testing.T, n int) events.ConfigReload {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		if len(s.got) >= n {
			e := s.got[n-1]
			s.mu.Unlock()
			return e
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no ConfigReload event number %d after SIGHUP", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSIGHUPEmitsConfigReload: each SIGHUP reloads the certificate and
// resolves passive.public_host again, and reports the result once: an
// events.ConfigReload (OK or not, with why) and a log line.
func TestSIGHUPEmitsConfigReload(t *testing.T) {
	name := &nat.PublicName{Name: "ftp.example.test", Resolve: resolveHost}
	if _, err := name.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuf
	log := zerolog.New(&logBuf)
	r := &fakeReloader{}
	sink := &reloadEvents{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloadOnHUP(ctx, r, name, nil, log, sink)

	hup := func() {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	if e := sink.wait(t, 1); !e.OK || e.Err != nil {
		t.Fatalf("first reload: %+v, want OK", e)
	}
	if !strings.Contains(logBuf.String(), `"message":"configuration reloaded"`) {
		t.Errorf("no log line for the reload: %s", logBuf.String())
	}

	// The certificate fails to load and the name no longer resolves: one
	// event, not OK, naming both; the last good address stays.
	r.mu.Lock()
	r.fail = errors.New("bad key")
	r.mu.Unlock()
	setDNS(t, "ftp.example.test")
	hup()
	e := sink.wait(t, 2)
	if e.OK || e.Err == nil || !strings.Contains(e.Err.Error(), "bad key") || !strings.Contains(e.Err.Error(), "passive.public_host") {
		t.Fatalf("failed reload: %+v", e)
	}
	if got := name.Addr(); got != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("after a failed resolution the address is %v, want the last one", got)
	}
	if !strings.Contains(logBuf.String(), "configuration reload failed") {
		t.Errorf("no error line for the failed reload: %s", logBuf.String())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n != 2 {
		t.Errorf("%d certificate reloads for two SIGHUPs", r.n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.got) != 2 {
		t.Errorf("%d events for two SIGHUPs", len(sink.got))
	}
}

// syncBuf is a log buffer safe for the signal goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
