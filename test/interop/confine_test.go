package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ftpsgate/ftpsgate/nat"
	"github.com/ftpsgate/ftpsgate/policy"
	"github.com/ftpsgate/ftpsgate/proxy"
	"github.com/ftpsgate/ftpsgate/vfs"

	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// Confinement (issue 13) with real backends and clients: the confined
// user's root is the subdirectory "part" of the backend account's tree, as
// the backend names paths (vsftpd here does not chroot: the full path;
// ProFTPD and Pure-FTPd chroot: "/part"). The gateway runs in process with
// proxy.WithAccess, and a dialer that records every line sent on the
// backend's control connection.

// recorder keeps what the gateway wrote on its backend control connections.
type recorder struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	control string // the backend's control address
}

func (r *recorder) DialBackend(ctx context.Context, address string, local netip.Addr) (net.Conn, error) {
	var d net.Dialer
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil || address != r.control {
		return c, err
	}
	return &recordedConn{Conn: c, r: r}, nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type recordedConn struct {
	net.Conn
	r *recorder
}

func (c *recordedConn) Write(p []byte) (int, error) {
	c.r.mu.Lock()
	c.r.buf.Write(p)
	c.r.mu.Unlock()
	return c.Conn.Write(p)
}

// confinedGateway starts an in-process gateway (explicit FTPS front) in
// front of srv, confining srv's user to root.
func confinedGateway(ctx context.Context, t *testing.T, srv *ftpServer, root string) (addr string, rec *recorder, logs *testproc.SyncBuffer) {
	t.Helper()
	lo, hi := portRange(t, 20)
	cfg := proxy.Config{
		Listeners: []proxy.Listener{{Name: "explicit", Address: "127.0.0.1:0", TLS: proxy.TLSExplicit}},
		TLS:       policy.TLSConfig{RequireProtectedData: true, DataSessionReuse: policy.ReuseOptional},
		Backend:   proxy.Backend{Address: srv.Addr, TLS: proxy.TLSNone},
		Passive:   nat.Config{Ports: nat.PortRange{Low: uint16(lo), High: uint16(hi)}},
		Bans:      policy.BanConfig{MaxFailures: 1000},
		Timeouts:  proxy.Timeouts{Connect: 5 * time.Second, DataAccept: 10 * time.Second, Idle: 60 * time.Second},
	}
	access := &vfs.Access{
		Profiles: map[string]vfs.Profile{"partner": {Root: root}},
		Users:    map[string]string{srv.User.Name: "partner"},
	}
	rec = &recorder{control: srv.Addr}
	logs = &testproc.SyncBuffer{}
	gw, err := proxy.New(cfg, zerolog.New(logs).With().Timestamp().Logger().Level(zerolog.DebugLevel), proxy.WithAccess(access), proxy.WithDialer(rec))
	if err != nil {
		t.Fatal(err)
	}
	gctx, cancel := context.WithCancel(ctx)
	if err := gw.Start(gctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = gw.Shutdown(sctx)
		cancel()
		if t.Failed() {
			t.Logf("%s\n%s\n%s", tail("gateway log", logs.String(), 8000), tail("backend commands", rec.String(), 4000), srv.diagnostics())
		}
	})
	return gw.Addr("explicit").String(), rec, logs
}

// diskTree lists what is below dir outside skip, with sizes.
func diskTree(t *testing.T, dir, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, _ := d.Info()
		out = append(out, strings.TrimPrefix(p, dir)+" "+strconv.FormatInt(info.Size(), 10))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConfineInterop: a confined user with curl, lftp and ftplib through
// the gateway, in front of vsftpd, ProFTPD and Pure-FTPd.
func TestConfineInterop(t *testing.T) {
	requireInterop(t)
	for _, kind := range []serverKind{kindVsftpd, kindProftpd, kindPureftpd} {
		t.Run(string(kind), func(t *testing.T) {
			ctx := testContext(t, 3*time.Minute)
			srv := startServer(ctx, t, backendSpec{kind, tlsNone})
			srv.mkdir(t, "part")
			srv.putFile(t, "outside.txt", []byte("outside the root\n"))
			root := "/part"
			if kind == kindVsftpd {
				root = srv.path("part") // not chrooted: the full path
			}
			addr, rec, _ := confinedGateway(ctx, t, srv, root)
			before := diskTree(t, srv.Root, srv.path("part"))
			t.Run("ftplib", func(t *testing.T) { confineFtplib(ctx, t, srv, addr) })
			t.Run("curl", func(t *testing.T) { confineCurl(ctx, t, srv, addr) })
			t.Run("lftp", func(t *testing.T) { confineLftp(ctx, t, srv, addr) })
			if after := diskTree(t, srv.Root, srv.path("part")); !slices.Equal(before, after) {
				t.Errorf("the backend's tree outside the root changed:\nbefore %q\nafter  %q", before, after)
			}
			for _, l := range strings.Split(rec.String(), "\r\n") {
				if strings.Contains(l, "..") || strings.Contains(l, "outside") || strings.Contains(l, `\`) {
					t.Errorf("the backend got %q", l)
				}
			}
		})
	}
}

func confineFtplib(ctx context.Context, t *testing.T, srv *ftpServer, addr string) {
	host, port := hostPort(t, addr)
	b, _ := json.Marshal(map[string]any{"host": host, "port": port, "user": srv.User.Name, "password": srv.User.Password})
	specPath := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "confine_client.py"))
	cmd := exec.CommandContext(ctx, systemPython, script, specPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Errorf("ftplib: %v\n%s", err, out.String())
	}
	if _, err := os.Stat(srv.path("part/ftplib/renamed.csv")); err != nil {
		t.Errorf("ftplib's renamed upload: %v", err)
	}
}

func confineCurl(ctx context.Context, t *testing.T, srv *ftpServer, addr string) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	data := make([]byte, 200_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := curlClient{Addr: addr, TLS: tlsExplicit, User: srv.User.Name, Password: srv.User.Password}
	run := func(what string, args ...string) curlRun {
		r := runCurl(ctx, t, append(c.args(), args...))
		if r.Err != nil {
			t.Errorf("curl %s: %v\n%s", what, r.Err, r.Output)
		}
		return r
	}
	r := run("upload", "--ftp-create-dirs", "-T", src, c.url("curl/up.bin"))
	if !strings.Contains(r.Output, `257 "/"`) {
		t.Errorf("curl's PWD did not get /:\n%s", r.Output)
	}
	run("download", "-o", filepath.Join(dir, "down.bin"), c.url("curl/up.bin"))
	if got, _ := os.ReadFile(filepath.Join(dir, "down.bin")); !bytes.Equal(got, data) {
		t.Errorf("curl download: %d bytes", len(got))
	}
	// Resumed upload (SIZE + APPE) and download (REST + RETR).
	srv.putFile(t, "part/curl/rs.bin", data[:50_000])
	run("resumed upload", "-C", "-", "-T", src, c.url("curl/rs.bin"))
	if got, _ := os.ReadFile(srv.path("part/curl/rs.bin")); !bytes.Equal(got, data) {
		t.Errorf("curl resumed upload: %d bytes on the backend", len(got))
	}
	part := filepath.Join(dir, "part.bin")
	_ = os.WriteFile(part, data[:70_000], 0o644)
	run("resumed download", "-C", "-", "-o", part, c.url("curl/up.bin"))
	if got, _ := os.ReadFile(part); !bytes.Equal(got, data) {
		t.Errorf("curl resumed download: %d bytes", len(got))
	}
	run("rename", "-Q", "RNFR curl/up.bin", "-Q", "RNTO /curl/moved.bin", c.url(""))
	r = run("list", c.url("curl/"))
	if !strings.Contains(r.Output, "moved.bin") || strings.Contains(r.Output, "part/") {
		t.Errorf("curl list:\n%s", r.Output)
	}
	for _, q := range []string{"CWD ..", "RNFR ../outside.txt", "DELE /../outside.txt"} {
		r := runCurl(ctx, t, append(c.args(), "-Q", q, c.url("")))
		if r.Err == nil || !strings.Contains(r.Output, "< 550") {
			t.Errorf("curl -Q %q: not refused with 550:\n%s", q, r.Output)
		}
	}
	r = runCurl(ctx, t, append(c.args(), "-o", filepath.Join(dir, "x"), c.url("%2e%2e/outside.txt")))
	if r.Err == nil || !strings.Contains(r.Output, "< 550") {
		t.Errorf("curl ../outside.txt: not refused with 550:\n%s", r.Output)
	}
}

func confineLftp(ctx context.Context, t *testing.T, srv *ftpServer, addr string) {
	bin := requireProgram(t, "lftp", "/usr/bin")
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	var files []string
	for i := range 12 {
		name := filepath.Join(fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d ü.bin", i))
		files = append(files, name)
		_ = os.MkdirAll(filepath.Join(tree, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(tree, name), bytes.Repeat([]byte{byte(i)}, 1000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv.mkdir(t, "part/lftp")
	big := bytes.Repeat([]byte("0123456789abcdef"), 20_000)
	srv.putFile(t, "part/lftp/rs.bin", big[:100_000])
	_ = os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	_ = os.WriteFile(filepath.Join(dir, "got.bin"), big[:30_000], 0o644)
	q := lftpQuote
	script := strings.Join([]string{
		"set cmd:fail-exit yes", "set net:max-retries 1", "set net:timeout 30", "set net:reconnect-interval-base 1",
		"set xfer:clobber on", "set ftp:ssl-force true", "set ftp:ssl-protect-data true", "set ftp:ssl-allow yes",
		"set ssl:verify-certificate no", "set ssl:check-hostname no", "set ftp:passive-mode on",
		fmt.Sprintf("open -u %s,%s ftp://%s", q(srv.User.Name), q(srv.User.Password), addr),
		"quote PWD",
		"mirror -R " + q(tree) + " /lftp/tree",
		"mirror /lftp/tree " + q(filepath.Join(dir, "back")),
		"cd /lftp",
		"mv tree/d0/" + q("f0 ü.bin") + " /lftp/moved.bin",
		"put -c " + q(filepath.Join(dir, "big.bin")) + " -o rs.bin",
		"get -c rs.bin -o " + q(filepath.Join(dir, "got.bin")),
		"cls -l",
		"set cmd:fail-exit no",
		"cd /", "quote CWD ..", "quote CDUP", "quote RETR ../outside.txt",
		"quote PWD",
	}, "\n") + "\n"
	cmd := exec.CommandContext(ctx, bin, "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Errorf("lftp: %v\n%s", err, out.String())
	}
	o := out.String()
	if strings.Count(o, `257 "/" is the current directory`) != 2 || strings.Count(o, "550") < 3 || strings.Contains(o, "part") {
		t.Errorf("lftp: PWD not / or escapes not refused, or the root shown:\n%s", o)
	}
	for _, f := range files {
		want, _ := os.ReadFile(filepath.Join(tree, f))
		back, _ := os.ReadFile(filepath.Join(dir, "back", f))
		if f == files[0] {
			continue // moved after the mirror
		}
		onDisk, _ := os.ReadFile(srv.path("part/lftp/tree/" + filepath.ToSlash(f)))
		if !bytes.Equal(want, back) || !bytes.Equal(want, onDisk) {
			t.Errorf("lftp mirror: %s differs", f)
		}
	}
	if _, err := os.Stat(srv.path("part/lftp/moved.bin")); err != nil {
		t.Errorf("lftp mv: %v", err)
	}
	if got, _ := os.ReadFile(srv.path("part/lftp/rs.bin")); !bytes.Equal(got, big) {
		t.Errorf("lftp put -c: %d bytes on the backend", len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "got.bin")); !bytes.Equal(got, big) {
		t.Errorf("lftp get -c: %d bytes", len(got))
	}
}
