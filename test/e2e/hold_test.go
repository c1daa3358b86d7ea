package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/filter"
	"github.com/ftpsgate/ftpsgate/filter/dlp"
	"github.com/ftpsgate/ftpsgate/filter/icap"
	"github.com/ftpsgate/ftpsgate/internal/testdlp"
	"github.com/ftpsgate/ftpsgate/internal/testicap"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	wire "github.com/ftpsgate/ftpsgate/proxy/ftp"
	"github.com/ftpsgate/ftpsgate/proxy/hold"
)

// heldLine is the hold part of a transfer's log line.
type heldLine struct {
	Command    string `json:"cmd"`
	Path       string `json:"path"`
	Bytes      int64  `json:"bytes"`
	Code       int    `json:"code"`
	SHA256     string `json:"sha256"`
	HeldBytes  int64  `json:"held_bytes"`
	HeldOnDisk int64  `json:"held_on_disk"`
}

func heldLog(t *testing.T, g *gateway, path string) heldLine {
	t.Helper()
	var found *heldLine
	waitLong(t, func() bool {
		for _, line := range strings.Split(g.logs.String(), "\n") {
			var l heldLine
			if strings.Contains(line, `"message":"transfer"`) && json.Unmarshal([]byte(line), &l) == nil && l.Command == "RETR" && l.Path == path {
				found = &l
			}
		}
		return found != nil
	}, "the transfer line of "+path)
	return *found
}

// openUnder lists the files this process holds open in dir (a spill file
// is unlinked at once: its link reads "dir/name (deleted)").
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	var out []string
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && filepath.Dir(target) == dir {
			out = append(out, target)
		}
	}
	return out
}

// noSpillLeft checks that dir is empty and that no file in it is still
// open.
func noSpillLeft(t *testing.T, dir string) {
	t.Helper()
	waitLong(t, func() bool { return len(openUnder(t, dir)) == 0 }, "no spill file open in "+dir)
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("files left in the spill directory: %v", names)
	}
}

// TestHoldDLP: with inspect.downloads: hold and cards blocked above 10, a
// download holding 11 card numbers gets 550 with the reference id, and the
// client receives none of its bytes; a clean file of the same size passes
// byte for byte, spilled to disk past memory_bytes (the spill file gone
// after), its log line's SHA-256 that of the bytes the client got; a file
// past max_bytes is refused with 550, an inspection record and no byte.
func TestHoldDLP(t *testing.T) {
	cfg := dlp.Defaults()
	cfg.Enabled, cfg.Directions = true, dlp.Downloads
	cfg.Cards = dlp.Rule{Enabled: true, Threshold: 10, Action: dlp.Block}
	spill := t.TempDir()
	g, path, _ := startInspected(t, cfg, func(c *proxy.Config) {
		c.HoldDownloads = true
		c.Hold = hold.Config{MaxBytes: 1 << 20, MemoryBytes: 64 << 10, Dir: spill}
		c.Hash = proxy.HashAll
	})
	c := dial(t, g, "explicit")

	const size = 256 << 10
	// The card numbers come after 192 KiB of clean text: streamed, that
	// much would reach the client before the block.
	dirty, clean := append(testdlp.File(0, 192<<10), testdlp.File(11, 64<<10)...), testdlp.File(0, size)
	big := randomBytes(t, 1<<20+1)
	for name, data := range map[string][]byte{"cards.txt": dirty, "clean.txt": clean, "big.bin": big} {
		if err := os.WriteFile(filepath.Join(g.root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	retr := func(name string) ([]byte, error) {
		r, err := c.Retr(name)
		if err != nil {
			return nil, err
		}
		got, _ := io.ReadAll(r) // a refused download's data connection is reset
		return got, r.Close()
	}
	got, err := retr("cards.txt")
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != 550 || !strings.HasPrefix(tp.Msg, "Transfer blocked by content policy (ref ") {
		t.Fatalf("RETR of the card file: %v, want 550 Transfer blocked by content policy", err)
	}
	if len(got) != 0 {
		t.Fatalf("the client received %d bytes of the blocked download", len(got))
	}
	ref := strings.TrimSuffix(strings.TrimPrefix(tp.Msg, "Transfer blocked by content policy (ref "), ").")

	got, err = retr("clean.txt")
	if err != nil || !bytes.Equal(got, clean) {
		t.Fatalf("RETR of the clean file: %v, %d bytes (equal: %v)", err, len(got), bytes.Equal(got, clean))
	}
	if l := heldLog(t, g, "clean.txt"); l.Code != 226 || l.Bytes != size || l.HeldBytes != size || l.HeldOnDisk != size-64<<10 || l.SHA256 != sum(clean) {
		t.Fatalf("clean.txt's line: %+v, want 226, %d bytes held, %d on disk, sha256 %s", l, size, size-64<<10, sum(clean))
	}

	got, err = retr("big.bin")
	if !errors.As(err, &tp) || tp.Code != 550 || !strings.HasPrefix(tp.Msg, "Download refused: the file is larger than the gateway can hold for inspection (ref ") {
		t.Fatalf("RETR past max_bytes: %v, want 550 Download refused", err)
	}
	if len(got) != 0 {
		t.Fatalf("the client received %d bytes of the download past max_bytes", len(got))
	}
	if l := heldLog(t, g, "big.bin"); l.Code != 550 || l.Bytes != 0 || l.SHA256 != "" {
		t.Fatalf("big.bin's line: %+v", l)
	}
	if l := heldLog(t, g, "cards.txt"); l.Code != 550 || l.Bytes != 0 || l.SHA256 != "" {
		t.Fatalf("cards.txt's line: %+v", l)
	}

	recs := inspectionRecords(t, path, 2)
	if x := recs[0].Inspection; x.Detector != "cards" || x.Count != 11 || x.Action != "block" || x.Ref != ref || x.Direction != "download" {
		t.Fatalf("card record %+v", x)
	}
	if x := recs[1].Inspection; x.Detector != "hold.max_bytes" || x.Action != "block" || x.Ref == "" || x.Path != "big.bin" {
		t.Fatalf("max_bytes record %+v", x)
	}
	if _, err := c.List("/"); err != nil {
		t.Fatalf("LIST after the refusals: %v", err)
	}
	noSpillLeft(t, spill)
}

// passFilter inspects and passes everything: with it a download is held.
type passFilter struct{}

func (passFilter) Write([]byte) error                             { return nil }
func (passFilter) Finish(context.Context) (filter.Verdict, error) { return filter.Verdict{}, nil }

// heldFakeGateway is a gateway in hold mode in front of a fake backend.
func heldFakeGateway(t *testing.T, f *fakeBackend, spill string, opts ...option) *gateway {
	return startGateway(t, append([]option{func(c *proxy.Config) {
		c.Backend.Address = f.ln.Addr().String()
		c.Timeouts.Connect = time.Second
		c.Filters = func(filter.Meta) []filter.Filter { return []filter.Filter{passFilter{}} }
		c.HoldDownloads = true
		c.Hold = hold.Config{MaxBytes: 64 << 20, MemoryBytes: 32 << 10, Dir: spill}
	}}, opts...)...)
}

// heldRetr sends RETR on a raw client and reads the data connection to its
// end: what the client received, and whether it ended cleanly.
func heldRetr(t *testing.T, c *rawClient, name string) ([]byte, error) {
	t.Helper()
	port := c.epsv()
	data := c.tlsData(c.dataConn(port, ""))
	c.send("RETR " + name)
	c.expect(wire.StatusAboutToSend)
	_ = data.SetReadDeadline(time.Now().Add(20 * time.Second))
	return io.ReadAll(data)
}

// TestHoldBackendFailure: a held download that the backend cuts short
// reaches the client not at all: a backend that says 451 after sending
// part of the file (a plain data connection: its end looks like the end
// of the file) passes its 451 on, one whose TLS data connection ends
// without close_notify gets the gateway's 426; neither client sees a clean
// end of the data.
func TestHoldBackendFailure(t *testing.T) {
	cert, caFile := selfSigned(t)
	for _, tc := range []struct {
		name string
		tls  bool
		code int
	}{{"plain-451", false, wire.StatusLocalError}, {"tls-truncated", true, wire.StatusTransferAborted}} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
				ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
				ctrl.Flush()
				_, _ = data.Write(bytes.Repeat([]byte("x"), 200<<10))
				if tc, ok := data.(*tls.Conn); ok {
					_ = tc.NetConn().Close() // no close_notify
					ctrl.WriteString("226 Transfer complete\r\n")
				} else {
					data.Close()
					ctrl.WriteString("451 Read error on the disk\r\n")
				}
				ctrl.Flush()
			})
			var opts []option
			if tc.tls {
				f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				opts = append(opts, func(c *proxy.Config) {
					c.Backend.TLS, c.Backend.Trust = proxy.TLSExplicit, policy.BackendTLS{CAFile: caFile}
				})
			}
			spill := t.TempDir()
			g := heldFakeGateway(t, f, spill, opts...)
			withTimeout(t, 30*time.Second, func() {
				c := dialRaw(t, g.addr("explicit"), false)
				c.login(false)
				got, err := heldRetr(t, c, "part.bin")
				if len(got) != 0 || err == nil {
					t.Errorf("the client received %d bytes (end: %v), want none and an error", len(got), err)
				}
				if rep := c.read(); rep.Code != tc.code {
					t.Errorf("final reply %d %q, want %d", rep.Code, rep.Text(), tc.code)
				}
				c.do("NOOP", wire.StatusCommandOK)
			})
			noSpillLeft(t, spill)
		})
	}
}

// TestHoldLongerThanAccept: the client's data connection waits, idle,
// while the gateway holds a download that takes longer than
// timeouts.data_accept to come (but never stalls for data_idle): the
// download is released whole, not cut.
func TestHoldLongerThanAccept(t *testing.T) {
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4<<10)
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		for range 8 {
			_, _ = data.Write(chunk)
			time.Sleep(250 * time.Millisecond)
		}
		data.Close()
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill, func(c *proxy.Config) { c.Timeouts.DataAccept = time.Second })
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		got, err := heldRetr(t, c, "slow.bin")
		if err != nil || !bytes.Equal(got, bytes.Repeat(chunk, 8)) {
			t.Errorf("held download: %d bytes, %v; want %d", len(got), err, 8*len(chunk))
		}
		c.expect(wire.StatusClosingDataConnection)
	})
	noSpillLeft(t, spill)
}

// TestHoldAbort: ABOR while the gateway holds a download (the backend, like
// vsftpd, reads no command while it sends, and would send forever): the
// client gets 426 then 226, not a byte of the file, and the spill file is
// gone.
func TestHoldAbort(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		sendSlowlyUntilCut(data)
		ctrl.WriteString("426 Transfer aborted. Data connection closed\r\n")
		ctrl.Flush()
	})
	f.onABOR = "226 Abort successful\r\n"
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill)
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR endless")
		c.expect(wire.StatusAboutToSend)
		if err := data.Handshake(); err != nil {
			t.Fatal(err)
		}
		waitLong(t, func() bool { return len(openUnder(t, spill)) == 1 }, "a spill file")
		c.send("ABOR")
		c.expect(wire.StatusTransferAborted)
		c.expect(wire.StatusClosingDataConnection)
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := io.Copy(io.Discard, data); n != 0 {
			t.Errorf("the client received %d bytes of the aborted held download", n)
		}
		c.do("NOOP", wire.StatusCommandOK)
	})
	noSpillLeft(t, spill)
}

// TestHoldICAP: through a real c-icap with ClamAV (FTPSGATE_INTEROP=1),
// in hold mode, a download of the file the test signature matches gets
// 550 naming the threat and the client receives none of it (streamed, all
// of it would have reached the client before the verdict); a clean file
// of the same size arrives whole.
func TestHoldICAP(t *testing.T) {
	infected := randomBytes(t, 2<<20+11)
	scanner := testicap.Start(t, infected)
	srv, err := icap.ParseServer(scanner.URL())
	if err != nil {
		t.Fatal(err)
	}
	client, err := icap.New(icap.Config{Servers: []icap.Server{srv}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	spill := t.TempDir()
	g := startGateway(t, func(c *proxy.Config) {
		c.Filters = func(m filter.Meta) []filter.Filter { return client.Filters(m) }
		c.HoldDownloads = true
		c.Hold = hold.Config{MemoryBytes: 1 << 20, Dir: spill}
	})
	clean := randomBytes(t, len(infected))
	for name, data := range map[string][]byte{"planted.bin": infected, "good.bin": clean} {
		if err := os.WriteFile(filepath.Join(g.root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, g, "explicit")
	r, err := c.Retr("planted.bin")
	if err != nil {
		t.Fatalf("RETR: %v", err)
	}
	got, _ := io.ReadAll(r)
	var tp *textproto.Error
	if err := r.Close(); !errors.As(err, &tp) || tp.Code != 550 || !strings.Contains(tp.Msg, scanner.Threat(0)) {
		t.Fatalf("RETR of the signature file, final reply: %v, want 550 naming %s", err, scanner.Threat(0))
	}
	if len(got) != 0 {
		t.Fatalf("the client received %d bytes of the infected download", len(got))
	}
	if got := retrAll(t, c, "good.bin", 0); !bytes.Equal(got, clean) {
		t.Fatal("the clean download differs")
	}
	noSpillLeft(t, spill)
}

// TestHoldShutdown: a held download still running when the shutdown grace
// ends is cut: the client gets 426 and none of it, and the spill file is
// gone.
func TestHoldShutdown(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		sendSlowlyUntilCut(data)
		ctrl.WriteString("426 Transfer aborted. Data connection closed\r\n")
		ctrl.Flush()
	})
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill)
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR endless")
		c.expect(wire.StatusAboutToSend)
		if err := data.Handshake(); err != nil {
			t.Fatal(err)
		}
		waitLong(t, func() bool { return len(openUnder(t, spill)) == 1 }, "a spill file")
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond) // the grace
		defer cancel()
		start := time.Now()
		if err := g.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown: %v, want the grace period over", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("shutdown took %s", d)
		}
		if rep := c.read(); rep.Code != wire.StatusTransferAborted {
			t.Errorf("at shutdown: %d %q, want 426", rep.Code, rep.Text())
		}
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := io.Copy(io.Discard, data); n != 0 {
			t.Errorf("the client received %d bytes of the held download", n)
		}
	})
	noSpillLeft(t, spill)
}

// sendSlowlyUntilCut writes 64 KiB every 10 ms (6.4 MB/s, a held download
// that stays below max_bytes for seconds) until the other end goes away.
func sendSlowlyUntilCut(data net.Conn) {
	chunk := make([]byte, 64<<10)
	for {
		if _, err := data.Write(chunk); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	data.Close()
}

// TestHoldFailsBeforeData: a backend that answers 451 before its TLS data
// connection is even up (the handshake comes later) fails the held
// download at once: the client gets the 451 and no data, not a wait.
func TestHoldFailsBeforeData(t *testing.T) {
	cert, caFile := selfSigned(t)
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n451 Cannot read the file\r\n")
		ctrl.Flush()
		time.Sleep(300 * time.Millisecond)
		if tc, ok := data.(*tls.Conn); ok {
			_ = tc.Handshake()
		}
		data.Close()
	})
	f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill, func(c *proxy.Config) {
		c.Backend.TLS, c.Backend.Trust = proxy.TLSExplicit, policy.BackendTLS{CAFile: caFile}
	})
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		got, err := heldRetr(t, c, "fails.bin")
		if len(got) != 0 || err == nil {
			t.Errorf("the client received %d bytes (end: %v), want none and an error", len(got), err)
		}
		if rep := c.read(); rep.Code != wire.StatusLocalError {
			t.Errorf("final reply %d %q, want 451", rep.Code, rep.Text())
		}
		c.do("NOOP", wire.StatusCommandOK)
	})
	noSpillLeft(t, spill)
}

// TestHoldSlowRelease: the backend's 226 comes a little after its data;
// the release to a slow client then takes longer than timeouts.idle (the
// wait for a final reply after the data): the client gets all of it and
// the 226, not a "no final reply" ending.
func TestHoldSlowRelease(t *testing.T) {
	const size = 24 << 20
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		_, _ = data.Write(make([]byte, size))
		data.Close()
		time.Sleep(200 * time.Millisecond)
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill, func(c *proxy.Config) { c.Timeouts.Idle = time.Second })
	withTimeout(t, 60*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR slow.bin")
		c.expect(wire.StatusAboutToSend)
		var n int64
		buf := make([]byte, 64<<10)
		_ = data.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			m, err := io.ReadFull(data, buf)
			n += int64(m)
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Errorf("after %d bytes: %v", n, err)
				}
				break
			}
			time.Sleep(10 * time.Millisecond) // about 6 MB/s at most
		}
		if n != size {
			t.Errorf("received %d bytes, want %d", n, size)
		}
		c.expect(wire.StatusClosingDataConnection)
	})
	noSpillLeft(t, spill)
}

// TestHoldBackendStalls: a backend that stops sending in the middle of a
// held download is cut after timeouts.data_idle: the client gets 426 and
// none of the part that came.
func TestHoldBackendStalls(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		_, _ = data.Write(make([]byte, 100<<10))
		_ = data.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _ = data.Read(make([]byte, 1)) // until the gateway gives up
		data.Close()
		ctrl.WriteString("426 Transfer aborted\r\n")
		ctrl.Flush()
	})
	spill := t.TempDir()
	g := heldFakeGateway(t, f, spill, func(c *proxy.Config) { c.Timeouts.DataIdle = time.Second })
	withTimeout(t, 30*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		got, err := heldRetr(t, c, "stalls.bin")
		if len(got) != 0 || err == nil {
			t.Errorf("the client received %d bytes (end: %v), want none and an error", len(got), err)
		}
		if rep := c.read(); rep.Code != wire.StatusTransferAborted {
			t.Errorf("final reply %d %q, want 426", rep.Code, rep.Text())
		}
		c.do("NOOP", wire.StatusCommandOK)
	})
	noSpillLeft(t, spill)
}

// TestHoldBandwidthLimit: the session's bandwidth limit paces a held
// download's release to the client: it arrives whole, no faster than the
// limit allows.
func TestHoldBandwidthLimit(t *testing.T) {
	spill := t.TempDir()
	g := startGateway(t, func(c *proxy.Config) {
		c.Limits = policy.Limits{SessionBandwidth: 1 << 20}
		c.Filters = func(filter.Meta) []filter.Filter { return []filter.Filter{passFilter{}} }
		c.HoldDownloads = true
		c.Hold = hold.Config{MemoryBytes: 1 << 20, Dir: spill}
	})
	data := randomBytes(t, 3<<20)
	writeFile(t, g.root, "slow.bin", data)
	c := dial(t, g, "explicit")
	start := time.Now()
	if got := retrAll(t, c, "slow.bin", 0); sum(got) != sum(data) {
		t.Fatal("throttled held download differs")
	}
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("3 MiB at 1 MiB/s took %s", d)
	}
	if l := heldLog(t, g, "slow.bin"); l.Code != 226 || l.HeldBytes != 3<<20 || l.HeldOnDisk != 2<<20 {
		t.Fatalf("slow.bin's line: %+v", l)
	}
	noSpillLeft(t, spill)
}

// slowVerdict is a filter whose verdict takes 30 s, or until its context
// is done (an ICAP server judging a large file).
type slowVerdict struct{}

func (slowVerdict) Write([]byte) error { return nil }
func (slowVerdict) Finish(ctx context.Context) (filter.Verdict, error) {
	select {
	case <-ctx.Done():
		return filter.Verdict{}, ctx.Err()
	case <-time.After(30 * time.Second):
		return filter.Verdict{}, nil
	}
}

// TestHoldAbortDuringVerdict: ABOR while a held download waits for its
// verdict is answered at once (426, 226), not after the verdict.
func TestHoldAbortDuringVerdict(t *testing.T) {
	f := startFakeBackend(t, func(ctrl *bufio.ReadWriter, data net.Conn, cmd string) {
		ctrl.WriteString("150 Opening BINARY mode data connection\r\n")
		ctrl.Flush()
		_, _ = data.Write(make([]byte, 100<<10))
		data.Close()
		ctrl.WriteString("226 Transfer complete\r\n")
		ctrl.Flush()
	})
	spill := t.TempDir()
	f.onABOR = "226 ABOR successful\r\n"
	g := heldFakeGateway(t, f, spill, func(c *proxy.Config) {
		c.Filters = func(filter.Meta) []filter.Filter { return []filter.Filter{slowVerdict{}} }
	})
	withTimeout(t, 20*time.Second, func() {
		c := dialRaw(t, g.addr("explicit"), false)
		c.login(false)
		port := c.epsv()
		data := c.tlsData(c.dataConn(port, ""))
		c.send("RETR judged.bin")
		c.expect(wire.StatusAboutToSend)
		if err := data.Handshake(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the data is held, the verdict awaited
		start := time.Now()
		c.send("ABOR")
		c.expect(wire.StatusTransferAborted)
		c.expect(wire.StatusClosingDataConnection)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("ABOR answered after %s", d)
		}
		_ = data.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, _ := io.Copy(io.Discard, data); n != 0 {
			t.Errorf("the client received %d bytes", n)
		}
		c.do("NOOP", wire.StatusCommandOK)
	})
	noSpillLeft(t, spill)
}
