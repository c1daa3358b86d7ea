package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/vfs"
)

// TestHashComputed: the demo backend knows no HASH, so the gateway reads
// the file over its own backend data connection and answers HASH and
// XSHA256 with the SHA-256 of the file on disk (whole, and from a REST
// offset); FEAT and OPTS HASH show SHA-256; a missing file is 550; the
// session goes on in step with the backend.
func TestHashComputed(t *testing.T) {
	g := startGateway(t)
	data := randomBytes(t, 300<<10)
	if err := os.WriteFile(filepath.Join(g.root, "up.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, g.addr("explicit"), false)
	pre := c.do("FEAT", wire.StatusSystemStatus)
	c.login(false)
	post := c.do("FEAT", wire.StatusSystemStatus)
	for _, rep := range []wire.Reply{pre, post} {
		if !hasLine(rep, "HASH SHA-256*") || !hasLine(rep, "XSHA256") {
			t.Errorf("FEAT lacks HASH SHA-256* or XSHA256: %q", rep.Lines)
		}
	}
	if got := c.do("OPTS HASH", wire.StatusCommandOK).Text(); got != "SHA-256" {
		t.Errorf("OPTS HASH: %q", got)
	}
	c.do("OPTS HASH sha-256", wire.StatusCommandOK)
	c.do("OPTS HASH MD5", wire.StatusNotImplementedParameter)

	c.do("TYPE A", wire.StatusCommandOK)
	want := fmt.Sprintf("SHA-256 0-%d %s up.bin", len(data), sum(data))
	if got := c.do("HASH up.bin", wire.StatusFileStatus).Text(); got != want {
		t.Errorf("HASH: %q, want %q", got, want)
	}
	if got := c.do("XSHA256 up.bin", wire.StatusFileActionOK).Text(); got != strings.ToUpper(sum(data)) {
		t.Errorf("XSHA256: %q, want %q", got, strings.ToUpper(sum(data)))
	}
	c.do("REST 1000", wire.StatusFileActionPending)
	want = fmt.Sprintf("SHA-256 1000-%d %s up.bin", len(data), sum(data[1000:]))
	if got := c.do("HASH up.bin", wire.StatusFileStatus).Text(); got != want {
		t.Errorf("HASH after REST: %q, want %q", got, want)
	}
	c.do("HASH missing.bin", wire.StatusFileUnavailable)
	c.do("HASH", wire.StatusSyntaxErrorParameters)
	// The backend is in step: the session's TYPE A is back, and the REST
	// was used up by the gateway's RETR.
	if !strings.Contains(g.logs.String(), `"sha256":"`+sum(data)+`"`) {
		t.Errorf("no log line with the computed hash")
	}
	c.do("SIZE up.bin", wire.StatusFileStatus)
	c.do("NOOP", wire.StatusCommandOK)
	// A prepared data connection is not taken away.
	c.epsv()
	c.do("HASH up.bin", wire.StatusBadSequence)
}

// TestHashSizeLimit: a file over transfers.hash_command_max_size is
// refused with 552 before it is read; a negative limit leaves HASH to the
// backend (which has none here: 502, and FEAT does not offer it).
func TestHashSizeLimit(t *testing.T) {
	g := startGateway(t, func(c *proxy.Config) { c.HashCommandMaxSize = 1000 })
	small, big := randomBytes(t, 1000), randomBytes(t, 1001)
	for name, b := range map[string][]byte{"small": small, "big": big} {
		if err := os.WriteFile(filepath.Join(g.root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("HASH big", wire.StatusExceededStorage)
	if got := c.do("HASH small", wire.StatusFileStatus).Text(); !strings.Contains(got, sum(small)) {
		t.Errorf("HASH small: %q", got)
	}

	off := startGateway(t, func(c *proxy.Config) { c.HashCommandMaxSize = -1 })
	c = dialRaw(t, off.addr("explicit"), false)
	c.login(false)
	if rep := c.do("FEAT", wire.StatusSystemStatus); hasLine(rep, "HASH SHA-256*") || hasLine(rep, "XSHA256") {
		t.Errorf("FEAT offers HASH with the fallback off: %q", rep.Lines)
	}
	c.do("HASH x", wire.StatusNotImplemented)
	c.do("NOOP", wire.StatusCommandOK)
}

// TestHashConfined: a confined user's HASH path is resolved in its root
// and needs the read permission of the path rules; the reply names the
// path as the client did and never the root.
func TestHashConfined(t *testing.T) {
	a := &vfs.Access{
		Profiles: map[string]vfs.Profile{"partner": {
			Root: "/partners/%s",
			Paths: []vfs.PathRule{
				{Path: "/", Allow: []string{"list"}},
				{Path: "/incoming/**", Allow: []string{"list", "write"}},
				{Path: "/outgoing/**", Allow: []string{"list", "read"}},
			},
			Commands: []string{"RETR", "STOR", "LIST", "HASH", "XSHA256"},
		}},
		Default: "partner",
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	g := startConfined(t, a)
	report := []byte("the partner's report")
	for _, d := range []string{"incoming", "outgoing"} {
		if err := os.MkdirAll(filepath.Join(g.home, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(g.home, d, "report.csv"), report, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	got := c.do("HASH /outgoing/report.csv", wire.StatusFileStatus).Text()
	if want := fmt.Sprintf("SHA-256 0-%d %s /outgoing/report.csv", len(report), sum(report)); got != want {
		t.Errorf("HASH: %q, want %q", got, want)
	}
	c.do("CWD outgoing", wire.StatusFileActionOK)
	c.do("XSHA256 report.csv", wire.StatusFileActionOK)
	c.do("XSHA256 ../incoming/report.csv", wire.StatusFileUnavailable) // write only: no read
	c.do("HASH /incoming/report.csv", wire.StatusFileUnavailable)
	rep := c.do("HASH ../../etc/passwd", wire.StatusFileUnavailable)
	noRoot(t, "HASH", got, rep.Text())
	if strings.Contains(g.beLog.String(), "incoming/report.csv") {
		t.Errorf("a refused HASH reached the backend")
	}
}

// TestHashRelayed: a backend that advertises HASH with SHA-256 gets OPTS
// HASH SHA-256 and then the client's HASH, whose reply the client gets;
// its own HASH FEAT line is replaced by the gateway's.
func TestHashRelayed(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		data.Close()
		ctrl.WriteString("550 not here\r\n")
		ctrl.Flush()
	})
	const backendHash = "213 SHA-256 0-42 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff file.bin\r\n"
	f.answers = map[string]string{
		"FEAT": "211-Features:\r\n SIZE\r\n HASH SHA-1*;SHA-256;MD5\r\n211 End\r\n",
		"OPTS": "200 SHA-256\r\n",
		"HASH": backendHash,
	}
	var mu sync.Mutex
	var seen []string
	f.record = func(line string) {
		if !strings.HasPrefix(line, "PASS") {
			mu.Lock()
			seen = append(seen, line)
			mu.Unlock()
		}
	}
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	feat := c.do("FEAT", wire.StatusSystemStatus)
	if !hasLine(feat, "HASH SHA-256*") || hasLine(feat, "HASH SHA-1*;SHA-256;MD5") {
		t.Errorf("FEAT: %q", feat.Lines)
	}
	got := c.do("HASH file.bin", wire.StatusFileStatus).Text()
	if want := strings.TrimSuffix(strings.TrimPrefix(backendHash, "213 "), "\r\n"); got != want {
		t.Errorf("HASH: %q, want the backend's %q", got, want)
	}
	c.do("NOOP", wire.StatusCommandOK)
	// The backend's default may be SHA-1 (ProFTPD's is): SHA-256 is
	// selected there before the first HASH.
	mu.Lock()
	defer mu.Unlock()
	got = strings.Join(seen, "|")
	if !strings.Contains(got, "OPTS HASH SHA-256|HASH file.bin") {
		t.Errorf("the backend got %q, want OPTS HASH SHA-256 then HASH file.bin", got)
	}
}

// TestHashBackendCutsMidway: a backend that advertises HASH but refuses
// SHA-256 gets the computed fallback; a transfer the backend cuts half-way
// answers 451 and the session goes on.
func TestHashBackendCutsMidway(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 here it comes\r\n")
		ctrl.Flush()
		if strings.HasSuffix(cmd, "whole") {
			data.Write([]byte("twelve bytes"))
			data.Close()
			ctrl.WriteString("226 done\r\n")
		} else {
			data.Write([]byte("half"))
			data.Close()
			ctrl.WriteString("426 connection lost\r\n")
		}
		ctrl.Flush()
	})
	f.answers = map[string]string{
		"FEAT": "211-Features:\r\n HASH SHA-256*\r\n211 End\r\n",
		"OPTS": "501 nope\r\n",
	}
	var mu sync.Mutex
	var seen []string
	f.record = func(line string) {
		if !strings.HasPrefix(line, "PASS") {
			mu.Lock()
			seen = append(seen, line)
			mu.Unlock()
		}
	}
	g := fakeGateway(t, f)
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("HASH half", wire.StatusLocalError)
	c.do("NOOP", wire.StatusCommandOK)
	got := c.do("HASH whole", wire.StatusFileStatus).Text()
	if want := "SHA-256 0-12 " + sum([]byte("twelve bytes")) + " whole"; got != want {
		t.Errorf("HASH: %q, want %q", got, want)
	}
	c.do("NOOP", wire.StatusCommandOK)
	// Binary for the read, the session's TYPE (A, the default) after it.
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "|"); !strings.Contains(got, "TYPE I|SIZE whole|EPSV|RETR whole|TYPE A|NOOP") {
		t.Errorf("the backend got %q", got)
	}
}

// TestHashGrowsPastLimit: with no SIZE from the backend, a file that turns
// out larger than transfers.hash_command_max_size while it is read is cut
// there: 552, the backend's 426 is read, and the session goes on.
func TestHashGrowsPastLimit(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 here it comes\r\n")
		ctrl.Flush()
		sendUntilCut(data)
		ctrl.WriteString("426 connection lost\r\n")
		ctrl.Flush()
	})
	g := startGateway(t, func(c *proxy.Config) {
		c.Backend.Address = f.ln.Addr().String()
		c.HashCommandMaxSize = 100 << 10
	})
	c := dialRaw(t, g.addr("explicit"), false)
	c.login(false)
	c.do("HASH endless", wire.StatusExceededStorage)
	c.do("NOOP", wire.StatusCommandOK)
	c.do("XSHA256 endless", wire.StatusExceededStorage)
	c.do("NOOP", wire.StatusCommandOK)
}
