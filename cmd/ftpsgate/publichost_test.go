package main

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// fakeDNS answers for passive.public_host in every test of the package:
// tests never reach the network. Tests change it with setDNS: a SIGHUP's
// goroutine may be resolving meanwhile.
var (
	fakeDNSMu sync.Mutex
	fakeDNS   = map[string][]netip.Addr{
		"localhost":           {netip.MustParseAddr("127.0.0.1")},
		"ftp.example.test":    {netip.MustParseAddr("203.0.113.7")},
		"v6only.example.test": {netip.MustParseAddr("2001:db8::1")},
	}
)

// setDNS sets host's addresses (none: the name does not resolve) and
// restores them at the end of the test.
func setDNS(t *testing.T, host string, addrs ...netip.Addr) {
	fakeDNSMu.Lock()
	defer fakeDNSMu.Unlock()
	old, had := fakeDNS[host]
	if len(addrs) == 0 {
		delete(fakeDNS, host)
	} else {
		fakeDNS[host] = addrs
	}
	t.Cleanup(func() {
		fakeDNSMu.Lock()
		defer fakeDNSMu.Unlock()
		if had {
			fakeDNS[host] = old
		} else {
			delete(fakeDNS, host)
		}
	})
}

func TestMain(m *testing.M) {
	resolveHost = func(_ context.Context, host string) ([]netip.Addr, error) {
		fakeDNSMu.Lock()
		defer fakeDNSMu.Unlock()
		if a, ok := fakeDNS[host]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	os.Exit(m.Run())
}

func TestPublicHostName(t *testing.T) {
	text := strings.Replace(goodConfig, "public_host: 203.0.113.10", "public_host: ftp.example.test", 1)
	cfg, err := loadFile(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	pass := cfg.proxy.Passive
	if pass.PublicHost.IsValid() || pass.PublicName == nil || pass.PublicName.Name != "ftp.example.test" {
		t.Fatalf("passive = %+v", pass)
	}
	if got := pass.Advertise(netip.MustParseAddr("10.0.0.1")); got != netip.MustParseAddr("203.0.113.7") {
		t.Fatalf("Advertise = %v, want the resolved address", got)
	}

	// SIGHUP resolves again and logs the new address; a failure keeps the
	// last one and logs an error.
	var logBuf bytes.Buffer
	log := zerolog.New(&logBuf)
	setDNS(t, "ftp.example.test", netip.MustParseAddr("203.0.113.8"))
	resolvePublicName(context.Background(), pass.PublicName, log)
	if got := pass.Advertise(netip.MustParseAddr("10.0.0.1")); got != netip.MustParseAddr("203.0.113.8") {
		t.Fatalf("after reload Advertise = %v", got)
	}
	if !strings.Contains(logBuf.String(), `"address":"203.0.113.8"`) {
		t.Errorf("log %q lacks the new address", logBuf.String())
	}
	logBuf.Reset()
	setDNS(t, "ftp.example.test")
	resolvePublicName(context.Background(), pass.PublicName, log)
	if got := pass.Advertise(netip.MustParseAddr("10.0.0.1")); got != netip.MustParseAddr("203.0.113.8") {
		t.Fatalf("after a failed reload Advertise = %v, want the last address", got)
	}
	if !strings.Contains(logBuf.String(), `"level":"error"`) || !strings.Contains(logBuf.String(), "does not resolve") {
		t.Errorf("failed reload not logged as an error: %q", logBuf.String())
	}
}
