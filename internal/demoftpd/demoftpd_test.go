package demoftpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func startServer(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, cfg.Root
}

func login(t *testing.T, s *Server, opts ...ftp.DialOption) *ftp.ServerConn {
	t.Helper()
	opts = append([]ftp.DialOption{ftp.DialWithTimeout(10 * time.Second)}, opts...)
	c, err := ftp.Dial(s.Addr(), opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Quit() })
	if err := c.Login("demo", "demo"); err != nil {
		t.Fatalf("Login: %v", err)
	}
	return c
}

func replyCode(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func retr(t *testing.T, c *ftp.ServerConn, path string, offset uint64) []byte {
	t.Helper()
	r, err := c.RetrFrom(path, offset)
	if err != nil {
		t.Fatalf("RETR %s @%d: %v", path, offset, err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("RETR %s final reply: %v", path, err)
	}
	return got
}

func TestAddrIsLoopback(t *testing.T) {
	s, _ := startServer(t, Config{})
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", s.Addr())
	}
}

func TestLogin(t *testing.T) {
	s, _ := startServer(t, Config{User: "alice", Password: "s3cret"})

	c, err := ftp.Dial(s.Addr(), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "wrong"); replyCode(err) != 530 {
		t.Fatalf("wrong password: err = %v, want 530", err)
	}
	if err := c.Login("bob", "s3cret"); replyCode(err) != 530 {
		t.Fatalf("wrong user: err = %v, want 530", err)
	}
	if err := c.Login("alice", "s3cret"); err != nil {
		t.Fatalf("good login: %v", err)
	}
	if dir, err := c.CurrentDir(); err != nil || dir != "/" {
		t.Fatalf("PWD = %q, %v", dir, err)
	}
}

func TestLoggerRedactsPassword(t *testing.T) {
	var buf testproc.SyncBuffer
	s, _ := startServer(t, Config{Password: "hunter2", Logger: zerolog.New(&buf)})
	c, err := ftp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("demo", "hunter2"); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	s.Close()
	out := buf.String()
	if !strings.Contains(out, `"cmd":"PASS"`) || !strings.Contains(out, `"level":"debug"`) {
		t.Fatalf("no debug command log:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("password logged:\n%s", out)
	}
}

func TestNotLoggedIn(t *testing.T) {
	s, _ := startServer(t, Config{})
	rc := dialRaw(t, s)
	rc.expect(530, "PWD")
	rc.expect(530, "EPSV")
	rc.expect(530, "RETR x")
}

func TestUploadDownload(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []ftp.DialOption
	}{
		{"EPSV", nil},
		{"PASV", []ftp.DialOption{ftp.DialWithDisabledEPSV(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, root := startServer(t, Config{})
			c := login(t, s, tc.opts...)

			data := randomBytes(t, 5<<20)
			want := sha256.Sum256(data)
			if err := c.Stor("big.bin", bytes.NewReader(data)); err != nil {
				t.Fatalf("STOR: %v", err)
			}
			onDisk, err := os.ReadFile(filepath.Join(root, "big.bin"))
			if err != nil || sha256.Sum256(onDisk) != want {
				t.Fatalf("file on disk differs (err %v)", err)
			}
			if got := retr(t, c, "big.bin", 0); sha256.Sum256(got) != want {
				t.Fatalf("downloaded %d bytes, SHA-256 differs", len(got))
			}
			if n, err := c.FileSize("big.bin"); err != nil || n != int64(len(data)) {
				t.Fatalf("SIZE = %d, %v", n, err)
			}
			mt, err := c.GetTime("big.bin")
			if err != nil {
				t.Fatalf("MDTM: %v", err)
			}
			if d := time.Since(mt); d < -time.Minute || d > time.Minute {
				t.Fatalf("MDTM = %v, not about now (UTC)", mt)
			}
			// ASCII type is accepted (data is sent unchanged).
			if err := c.Type(ftp.TransferTypeASCII); err != nil {
				t.Fatalf("TYPE A: %v", err)
			}
			if err := c.Type(ftp.TransferTypeBinary); err != nil {
				t.Fatalf("TYPE I: %v", err)
			}
		})
	}
}

func TestPassiveRepliesAdvertiseLoopback(t *testing.T) {
	s, _ := startServer(t, Config{})
	rc := dialRaw(t, s)
	rc.login()
	msg := rc.expect(227, "PASV")
	if !strings.Contains(msg, "(127,0,0,1,") {
		t.Fatalf("227 = %q, want 127,0,0,1", msg)
	}
	msg = rc.expect(229, "EPSV")
	if !strings.Contains(msg, "(|||") {
		t.Fatalf("229 = %q", msg)
	}
	rc.expect(200, "EPSV ALL")
	rc.expect(522, "EPSV 2")
	rc.expect(502, "PORT 127,0,0,1,4,1")
	rc.expect(502, "EPRT |1|127.0.0.1|1025|")
	rc.expect(425, "RETR nothing") // no PASV before it
}

func TestPassivePortRange(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s, _ := startServer(t, Config{PassivePorts: fmt.Sprintf("%d-%d", port, port)})
	rc := dialRaw(t, s)
	rc.login()
	if got := rc.epsv(); got != port {
		t.Fatalf("EPSV port = %d, want %d", got, port)
	}
	// The only port is taken by the pending listener until it is replaced.
	if got := rc.epsv(); got != port {
		t.Fatalf("second EPSV port = %d, want %d (previous listener not released)", got, port)
	}
}

func TestListings(t *testing.T) {
	s, root := startServer(t, Config{})
	if err := os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sub", "b.txt"), []byte("12345678"), 0o644); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, entries []*ftp.Entry) {
		t.Helper()
		got := map[string]*ftp.Entry{}
		for _, e := range entries {
			got[e.Name] = e
		}
		if len(got) != 2 || got["a.txt"] == nil || got["sub"] == nil {
			t.Fatalf("entries = %v", slices.Collect(func(yield func(string) bool) {
				for n := range got {
					yield(n)
				}
			}))
		}
		if e := got["a.txt"]; e.Type != ftp.EntryTypeFile || e.Size != 5 {
			t.Fatalf("a.txt = %+v", e)
		}
		if e := got["sub"]; e.Type != ftp.EntryTypeFolder {
			t.Fatalf("sub = %+v", e)
		}
		if d := time.Since(got["a.txt"].Time); d < -time.Minute || d > 24*time.Hour {
			t.Fatalf("a.txt time = %v", got["a.txt"].Time)
		}
	}

	t.Run("MLSD", func(t *testing.T) {
		c := login(t, s)
		entries, err := c.List("/")
		if err != nil {
			t.Fatal(err)
		}
		check(t, entries)
	})
	t.Run("LIST", func(t *testing.T) {
		c := login(t, s, ftp.DialWithDisabledMLSD(true))
		entries, err := c.List("")
		if err != nil {
			t.Fatal(err)
		}
		check(t, entries)
	})
	t.Run("NLST", func(t *testing.T) {
		c := login(t, s)
		names, err := c.NameList("sub")
		if err != nil || !slices.Equal(names, []string{"b.txt"}) {
			t.Fatalf("NLST sub = %q, %v", names, err)
		}
	})
	t.Run("MLST", func(t *testing.T) {
		c := login(t, s)
		e, err := c.GetEntry("/sub/b.txt")
		if err != nil || e.Size != 8 || e.Type != ftp.EntryTypeFile {
			t.Fatalf("MLST = %+v, %v", e, err)
		}
	})
	t.Run("CRLF", func(t *testing.T) {
		rc := dialRaw(t, s)
		rc.login()
		port := rc.epsv()
		data := rc.dialData(port)
		rc.expect(150, "MLSD /")
		raw, err := io.ReadAll(data)
		if err != nil {
			t.Fatal(err)
		}
		data.Close()
		rc.read(226)
		if n := bytes.Count(raw, []byte("\n")); n != 2 || bytes.Count(raw, []byte("\r\n")) != n {
			t.Fatalf("MLSD output not 2 CRLF lines: %q", raw)
		}
		rc.expect(425, "LIST /") // no EPSV
		rc.epsv()
		rc.expect(550, "LIST /nonexistent")
		rc.epsv()
		rc.expect(550, "MLSD /a.txt") // MLSD needs a directory
		rc.expect(425, "LIST /")      // the failure discarded the passive listener
	})
}

func TestResumeDownload(t *testing.T) {
	s, root := startServer(t, Config{})
	data := randomBytes(t, 1<<20)
	if err := os.WriteFile(filepath.Join(root, "f.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	const off = 300_001
	if got := retr(t, c, "f.bin", off); !bytes.Equal(got, data[off:]) {
		t.Fatalf("REST %d + RETR: got %d bytes, want %d matching", off, len(got), len(data)-off)
	}
	if got := retr(t, c, "f.bin", uint64(len(data))); len(got) != 0 {
		t.Fatalf("REST at EOF returned %d bytes", len(got))
	}
	if _, err := c.RetrFrom("f.bin", uint64(len(data)+1)); replyCode(err) != 554 {
		t.Fatalf("REST beyond EOF: err = %v, want 554", err)
	}
	// REST applies only to the next command.
	if got := retr(t, c, "f.bin", 0); !bytes.Equal(got, data) {
		t.Fatal("RETR after a REST transfer did not start at 0")
	}
}

func TestResumeUpload(t *testing.T) {
	s, root := startServer(t, Config{})
	c := login(t, s)
	data := randomBytes(t, 1<<20)
	const off = 400_000

	// An interrupted upload left garbage after the offset: REST+STOR must write
	// at the offset, not append (goftp's file driver appends).
	partial := append(slices.Clone(data[:off]), []byte("garbage after the resume point")...)
	if err := os.WriteFile(filepath.Join(root, "up.bin"), partial, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.StorFrom("up.bin", bytes.NewReader(data[off:]), off); err != nil {
		t.Fatalf("REST+STOR: %v", err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "up.bin"))
	if !bytes.Equal(got, data) {
		t.Fatalf("after REST+STOR: %d bytes, want the %d original", len(got), len(data))
	}
	if err := c.StorFrom("up.bin", bytes.NewReader(data), uint64(len(data)+1)); replyCode(err) != 554 {
		t.Fatalf("REST beyond EOF + STOR: err = %v, want 554", err)
	}
}

func TestAppend(t *testing.T) {
	s, root := startServer(t, Config{})
	c := login(t, s)
	if err := c.Append("log.txt", strings.NewReader("new ")); err != nil {
		t.Fatalf("APPE (create): %v", err)
	}
	if err := c.Append("log.txt", strings.NewReader("appended")); err != nil {
		t.Fatalf("APPE: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "log.txt")); string(got) != "new appended" {
		t.Fatalf("after APPE: %q", got)
	}
}

func TestStou(t *testing.T) {
	s, root := startServer(t, Config{})
	if err := os.WriteFile(filepath.Join(root, "up"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	rc := dialRaw(t, s)
	rc.login()
	data := rc.dialData(rc.epsv())
	msg := rc.expect(150, "STOU up")
	if msg != "FILE: /up.1" {
		t.Fatalf("150 = %q", msg)
	}
	io.WriteString(data, "fresh")
	data.Close()
	rc.read(226)
	if got, _ := os.ReadFile(filepath.Join(root, "up.1")); string(got) != "fresh" {
		t.Fatalf("up.1 = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "up")); string(got) != "old" {
		t.Fatalf("up = %q", got)
	}
}

func TestDirectoriesDeleteRename(t *testing.T) {
	s, root := startServer(t, Config{})
	c := login(t, s)

	if err := c.MakeDir("d"); err != nil {
		t.Fatalf("MKD: %v", err)
	}
	if err := c.MakeDir("d"); replyCode(err) != 550 {
		t.Fatalf("MKD existing: err = %v, want 550", err)
	}
	if err := c.ChangeDir("d"); err != nil {
		t.Fatalf("CWD: %v", err)
	}
	if dir, _ := c.CurrentDir(); dir != "/d" {
		t.Fatalf("PWD = %q", dir)
	}
	if err := c.Stor("f.txt", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDirToParent(); err != nil {
		t.Fatalf("CDUP: %v", err)
	}
	if dir, _ := c.CurrentDir(); dir != "/" {
		t.Fatalf("PWD after CDUP = %q", dir)
	}
	if err := c.RemoveDir("d"); replyCode(err) != 550 {
		t.Fatalf("RMD non-empty: err = %v, want 550 (goftp deletes recursively)", err)
	}
	if err := c.Rename("d/f.txt", "g.txt"); err != nil {
		t.Fatalf("RNFR/RNTO: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "g.txt")); err != nil {
		t.Fatalf("renamed file: %v", err)
	}
	if err := c.Rename("missing", "x"); replyCode(err) != 550 {
		t.Fatalf("RNFR missing: err = %v, want 550", err)
	}
	if err := c.RemoveDir("d"); err != nil {
		t.Fatalf("RMD: %v", err)
	}
	if err := c.Delete("g.txt"); err != nil {
		t.Fatalf("DELE: %v", err)
	}
	if err := c.Delete("g.txt"); replyCode(err) != 550 {
		t.Fatalf("DELE missing: err = %v, want 550", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("root not empty: %v", entries)
	}

	rc := dialRaw(t, s)
	rc.login()
	if msg := rc.expect(257, "MKD q"); msg != `"/q" directory created` {
		t.Fatalf("257 = %q", msg)
	}
	rc.expect(503, "RNTO x") // goftp would rename the root
	rc.expect(350, "RNFR q")
	rc.expect(200, "NOOP")
	rc.expect(503, "RNTO r") // RNFR must come right before
	rc.expect(550, "RMD /")
}

func TestFeat(t *testing.T) {
	s, _ := startServer(t, Config{})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "FEAT\r\n")
	var raw strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("FEAT: %v after %q", err, raw.String())
		}
		raw.WriteString(line)
		if !strings.HasSuffix(line, "\r\n") {
			t.Fatalf("FEAT line without CRLF: %q", line)
		}
		if strings.HasPrefix(line, "211 ") {
			break
		}
	}
	for _, f := range []string{" SIZE\r\n", " MDTM\r\n", " REST STREAM\r\n", " EPSV\r\n", " MLST type*;size*;modify*;\r\n", " UTF8\r\n"} {
		if !strings.Contains(raw.String(), f) {
			t.Errorf("FEAT lacks %q:\n%s", f, raw.String())
		}
	}
}

func TestAbortDownload(t *testing.T) {
	s, root := startServer(t, Config{})
	// A sparse file far larger than the loopback socket buffers.
	f, err := os.Create(filepath.Join(root, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	rc := dialRaw(t, s)
	rc.login()
	data := rc.dialData(rc.epsv())
	defer data.Close()
	rc.expect(150, "RETR huge.bin")
	if _, err := io.ReadFull(data, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	// Telnet IP and Synch before ABOR, as RFC 959 clients send it.
	rc.send("\xff\xf4\xff\xf2ABOR")
	rc.read(426)
	rc.read(226)
	rc.expect(200, "NOOP")

	// The session still transfers after an abort.
	data2 := rc.dialData(rc.epsv())
	rc.expect(350, "REST "+strconv.Itoa(256<<20-10))
	rc.expect(150, "RETR huge.bin")
	tail, _ := io.ReadAll(data2)
	data2.Close()
	rc.read(226)
	if len(tail) != 10 {
		t.Fatalf("tail = %d bytes", len(tail))
	}
	// ABOR without a transfer.
	rc.expect(226, "ABOR")
}

func TestAbortUpload(t *testing.T) {
	s, _ := startServer(t, Config{})
	rc := dialRaw(t, s)
	rc.login()
	data := rc.dialData(rc.epsv())
	defer data.Close()
	rc.expect(150, "STOR up.bin")
	if _, err := data.Write(randomBytes(t, 100<<10)); err != nil {
		t.Fatal(err)
	}
	rc.send("ABOR")
	rc.read(426)
	rc.read(226)
	rc.expect(200, "NOOP")
}

// TestCloseEndsActiveSessions checks that Close ends idle, passive-pending and
// transferring sessions promptly and leaves no goroutine behind.
func TestCloseEndsActiveSessions(t *testing.T) {
	defer goleak.VerifyNone(t)

	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(256 << 20)
	f.Close()

	s, err := Start(context.Background(), Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}

	idle, err := ftp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Quit()
	if err := idle.Login("demo", "demo"); err != nil {
		t.Fatal(err)
	}

	pending := dialRaw(t, s)
	pending.login()
	pending.epsv() // never connects: goftp would hold a goroutine 60 s here

	busy := dialRaw(t, s)
	busy.login()
	data := busy.dialData(busy.epsv())
	defer data.Close()
	busy.expect(150, "RETR huge.bin")
	if _, err := io.ReadFull(data, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still accepting after Close")
	}
	if _, err := io.Copy(io.Discard, data); err == nil {
		// A clean EOF is fine too; what matters is that it ended.
		t.Log("data connection ended with EOF")
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting 5 s after the context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The listener closes first, then the sessions: give them the same 5 s.
	for c.NoOp() == nil {
		if time.Now().After(deadline) {
			t.Fatal("session survived the context")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, cfg := range []Config{
		{},
		{Root: filepath.Join(dir, "missing")},
		{Root: file},
		{Root: dir, PassivePorts: "40000"},
		{Root: dir, PassivePorts: "2-1"},
		{Root: dir, PassivePorts: "0-10"},
		{Root: dir, PassivePorts: "1-70000"},
		{Root: dir, Address: "nonsense"},
	} {
		if s, err := Start(context.Background(), cfg); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestStripTelnet(t *testing.T) {
	for in, want := range map[string]string{
		"ABOR\r\n":                 "ABOR\r\n",
		"\xff\xf4\xff\xf2ABOR\r\n": "ABOR\r\n",
		"\xff\xf4\xffABOR\r\n":     "ABOR\r\n", // DM taken out as urgent data
		"NOOP\r\n":                 "NOOP\r\n",
	} {
		if got := string(stripTelnet([]byte(in))); got != want {
			t.Errorf("stripTelnet(%q) = %q, want %q", in, got, want)
		}
	}
}

// rawClient speaks FTP by hand, for what jlaffaye/ftp cannot send (ABOR,
// STOU) or hides (exact replies).
type rawClient struct {
	t    *testing.T
	conn net.Conn
	tp   *textproto.Conn
}

func dialRaw(t *testing.T, s *Server) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	rc := &rawClient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { rc.tp.Close() })
	rc.read(220)
	return rc
}

func (rc *rawClient) send(line string) {
	rc.t.Helper()
	if err := rc.tp.PrintfLine("%s", line); err != nil {
		rc.t.Fatalf("send %q: %v", line, err)
	}
}

func (rc *rawClient) read(code int) string {
	rc.t.Helper()
	got, msg, err := rc.tp.ReadResponse(0)
	if err != nil || got != code {
		rc.t.Fatalf("reply %d %q (%v), want %d", got, msg, err, code)
	}
	return msg
}

func (rc *rawClient) expect(code int, line string) string {
	rc.t.Helper()
	rc.send(line)
	return rc.read(code)
}

func (rc *rawClient) login() {
	rc.t.Helper()
	rc.expect(331, "USER demo")
	rc.expect(230, "PASS demo")
	rc.expect(200, "TYPE I")
}

func (rc *rawClient) epsv() int {
	rc.t.Helper()
	msg := rc.expect(229, "EPSV")
	i, j := strings.Index(msg, "(|||"), strings.LastIndex(msg, "|)")
	if i < 0 || j < i+4 {
		rc.t.Fatalf("bad 229 %q", msg)
	}
	port, err := strconv.Atoi(msg[i+4 : j])
	if err != nil {
		rc.t.Fatalf("bad 229 %q", msg)
	}
	return port
}

func (rc *rawClient) dialData(port int) net.Conn {
	rc.t.Helper()
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		rc.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}
