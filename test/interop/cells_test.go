package interop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// dataMode is how a client opens data connections to the gateway.
type dataMode string

const (
	dataPASV dataMode = "PASV"
	dataEPSV dataMode = "EPSV"
	dataPORT dataMode = "PORT" // active, IPv4 (RFC 959)
	dataEPRT dataMode = "EPRT" // active, RFC 2428
)

func (d dataMode) active() bool { return d == dataPORT || d == dataEPRT }

// cellMode is one way a client meets the gateway: the front listener, the
// data connection mode and the TLS version on the front.
type cellMode struct {
	Front tlsMode // explicit or implicit
	Data  dataMode
	TLS   string // "1.2" or "1.3", forced by the client
}

func (m cellMode) String() string {
	return fmt.Sprintf("%s/%s/TLS%s", m.Front, m.Data, m.TLS)
}

// cellModes is a pairwise covering of front × data × TLS version: every pair
// of values (front and data, front and TLS, data and TLS) occurs, in 8 modes
// instead of 16. Every client runs the basic operations in each of them
// against every backend.
var cellModes = []cellMode{
	{tlsExplicit, dataPASV, "1.2"}, {tlsImplicit, dataPASV, "1.3"},
	{tlsExplicit, dataEPSV, "1.3"}, {tlsImplicit, dataEPSV, "1.2"},
	{tlsExplicit, dataPORT, "1.3"}, {tlsImplicit, dataPORT, "1.2"},
	{tlsExplicit, dataEPRT, "1.2"}, {tlsImplicit, dataEPRT, "1.3"},
}

// opSet is what a cell does.
type opSet string

const (
	// opsBasic: login, PWD, CWD, MKD, CDUP, RMD, STOR, SIZE, RETR, NLST,
	// LIST (what the client can of it; see each client).
	opsBasic opSet = "basic"
	// opsFull: basic plus names with spaces and UTF-8, a 0-byte file, MDTM,
	// MLSD, APPE, REST+STOR, REST+RETR, RNFR/RNTO, DELE, ABOR in the middle
	// of a download, and for lftp mirror/mirror -R of a 200-file tree.
	opsFull opSet = "full"
	// opsBig: a 256 MiB file up and down.
	opsBig opSet = "big"
)

// ftpClientKind is one client program of the matrix.
type ftpClientKind interface {
	// Name is the client's column in the table.
	Name() string
	// Unsupported says why the client cannot run m at all ("" if it can):
	// a feature the client lacks, so there is nothing to test.
	Unsupported(m cellMode) string
	// Run does ops in the cell's directory. Problems go to c.errorf; the
	// transcript (control-channel exchange) to c.logf.
	Run(ctx context.Context, c *cell, ops opSet)
}

// matrixClients are the clients in the order of the table.
var matrixClients = []ftpClientKind{
	curlKind{}, lftpKind{}, ftplibKind{resume: false}, ftplibKind{resume: true}, goftpKind{},
}

// cell is one client × backend × mode × ops run. It collects failures
// instead of failing the test at once, so that a known limitation can be
// matched against them.
type cell struct {
	t      *testing.T
	gw     *gateway
	srv    *ftpServer
	fx     *fixtures
	mode   cellMode
	ops    opSet
	client string
	Dir    string // the cell's directory, relative to the login directory
	Local  string // a local directory for downloads

	mu         sync.Mutex
	errs       []string
	transcript strings.Builder
}

func (c *cell) errorf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *cell) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(&c.transcript, format, args...)
	c.transcript.WriteByte('\n')
}

// addr is the gateway's listener for the cell's front.
func (c *cell) addr() string {
	if c.mode.Front == tlsImplicit {
		return c.gw.Config.ImplicitAddr
	}
	return c.gw.Config.ExplicitAddr
}

// expectFile checks that name on the server's disk has the SHA-256 of local.
func (c *cell) expectServerFile(name, local string) {
	c.expectServerSum(name, fileSum(local), fileSize(local))
}

func (c *cell) expectServerSum(name, sum string, size int64) {
	got := fileSum(c.srv.path(c.Dir + "/" + name))
	if got != sum {
		c.errorf("file %q on the backend: SHA-256 %s (size %d), want %s (size %d)",
			name, got, fileSize(c.srv.path(c.Dir+"/"+name)), sum, size)
	}
}

// expectLocalFile checks that a downloaded file has the SHA-256 of want.
func (c *cell) expectLocalFile(name, want string) {
	c.expectLocalSum(name, fileSum(want), fileSize(want))
}

func (c *cell) expectLocalSum(name, sum string, size int64) {
	p := filepath.Join(c.Local, name)
	if got := fileSum(p); got != sum {
		c.errorf("downloaded %q: SHA-256 %s (size %d), want %s (size %d)", name, got, fileSize(p), sum, size)
	}
}

// expectServerAbsent checks that name is gone from the server's disk.
func (c *cell) expectServerAbsent(name string) {
	if _, err := os.Lstat(c.srv.path(c.Dir + "/" + name)); err == nil {
		c.errorf("%q still exists on the backend", name)
	}
}

// fileSum is the hex SHA-256 of a file, or a description of the error.
func fileSum(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "(" + err.Error() + ")"
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

// fixtures are the local files the cells upload and the backend files they
// download, made once per run.
type fixtures struct {
	Src   string // 100 KiB, uploaded as up.bin
	Seed  string // 300 KiB, placed on the backend as seed.bin
	Zero  string // 0 bytes
	Part1 string // 40 KiB, APPE's first part
	Part2 string // 24 KiB, APPE's second part
	App   string // Part1 + Part2
	Abort string // 32 MiB, placed as abort.bin: ABOR cuts its download
	Tree  string // 200 files in subdirectories, for lftp mirror
	Big   string // 256 MiB
	Rest  int64  // the REST offset into seed.bin
}

const (
	bigMatrixSize = 256 << 20
	treeFiles     = 200
)

var makeFixtures = sync.OnceValues(func() (*fixtures, error) {
	dir := filepath.Join(workDir, "fixtures")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fx := &fixtures{
		Src: filepath.Join(dir, "src.bin"), Seed: filepath.Join(dir, "seed.bin"),
		Zero: filepath.Join(dir, "zero.bin"), Part1: filepath.Join(dir, "part1.bin"),
		Part2: filepath.Join(dir, "part2.bin"), App: filepath.Join(dir, "app.bin"),
		Abort: filepath.Join(dir, "abort.bin"), Tree: filepath.Join(dir, "tree"),
		Big: filepath.Join(dir, "big.bin"), Rest: 100_003,
	}
	for _, f := range []struct {
		path string
		size int64
	}{{fx.Src, 100 << 10}, {fx.Seed, 300 << 10}, {fx.Zero, 0}, {fx.Part1, 40 << 10}, {fx.Part2, 24 << 10},
		{fx.Abort, 32 << 20}, {fx.Big, bigMatrixSize}} {
		if err := randomFile(f.path, f.size); err != nil {
			return nil, err
		}
	}
	p1, err := os.ReadFile(fx.Part1)
	if err != nil {
		return nil, err
	}
	p2, err := os.ReadFile(fx.Part2)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(fx.App, append(p1, p2...), 0o644); err != nil {
		return nil, err
	}
	// 200 files of 1-4 KiB in 10 directories (two levels), some names with
	// spaces and UTF-8.
	for i := range treeFiles {
		d := filepath.Join(fx.Tree, fmt.Sprintf("d%d", i%5), fmt.Sprintf("e%d", i%2))
		name := fmt.Sprintf("f%03d.txt", i)
		if i%25 == 0 {
			name = fmt.Sprintf("f %03d ü.txt", i)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		if err := randomFile(filepath.Join(d, name), int64(1024+(i*37)%3072)); err != nil {
			return nil, err
		}
	}
	return fx, nil
})

func randomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.Reader, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func getFixtures(t *testing.T) *fixtures {
	t.Helper()
	fx, err := makeFixtures()
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	return fx
}

// knownLimitation is a cell that fails for a reason outside the gateway. The
// test asserts that it still fails, and in this way (Match must occur in its
// errors or transcript), so the entry cannot silently rot.
type knownLimitation struct {
	Client  string
	Backend string // backendSpec.String(), or "*"
	Mode    string // cellMode.String(), or a path.Match pattern of it ("*/PORT/*"), or "*"
	Ops     opSet  // or "" for any
	Reason  string
	Match   string
}

func (k knownLimitation) matches(client, backend, mode string, ops opSet) bool {
	modeOK, _ := path.Match(k.Mode, mode) // "*/PORT/*": any front, PORT, any TLS version
	return k.Client == client && (k.Backend == "*" || k.Backend == backend) &&
		(k.Mode == "*" || modeOK) && (k.Ops == "" || k.Ops == ops)
}

// knownLimitations: every entry's reason lies outside the gateway. Never add
// one to hide a gateway bug.
var knownLimitations = []knownLimitation{
	// curl 7.88 (Debian 12) accepts the active-mode data connection and
	// sends the data in plain text, without the TLS handshake PROT P asks
	// for: it fails the same way straight against vsftpd ("SSL routines::
	// wrong version number").
	{
		Client: "curl", Backend: "*", Mode: "*/PORT/*",
		Reason: "curl 7.88 does not start TLS on active-mode (PORT) data connections; it fails against vsftpd directly too",
		Match:  "data connection TLS handshake failed",
	},
	{
		Client: "curl", Backend: "*", Mode: "*/EPRT/*",
		Reason: "curl 7.88 does not start TLS on active-mode (EPRT) data connections; it fails against vsftpd directly too",
		Match:  "data connection TLS handshake failed",
	},
	// curl turns TLS 1.2 session tickets off (SSL_OP_NO_TICKET) and resumes
	// by session ID, which crypto/tls, the gateway's TLS stack, does not
	// implement on the server side: with data_session_reuse: required
	// (the default) curl needs TLS 1.3 (its default) or the optional mode.
	{
		Client: "curl", Backend: "*", Mode: "*/*/TLS1.2",
		Reason: "curl resumes TLS 1.2 sessions by session ID only (tickets off) and crypto/tls resumes by ticket only; use TLS 1.3 (curl's default) or tls.data_session_reuse: optional",
		Match:  "did not resume this session's control connection",
	},
	{
		Client: "ftplib", Backend: "*", Mode: "*",
		Reason: "stock ftplib.FTP_TLS does not resume the control connection's TLS session on data connections; " +
			"the gateway's default tls.data_session_reuse: required refuses them (ftplib+resume is the fix)",
		Match: "did not resume this session's control connection",
	},
}

func findKnown(client, backend, mode string, ops opSet) *knownLimitation {
	for i := range knownLimitations {
		if knownLimitations[i].matches(client, backend, mode, ops) {
			return &knownLimitations[i]
		}
	}
	return nil
}

// logSince is the gateway's log from byte offset off on.
func (g *gateway) logSince(off int64) string {
	log := g.proc.Log()
	if off < 0 || off > int64(len(log)) {
		return log
	}
	return log[off:]
}

// runCell runs one client × backend × mode × ops cell as a subtest and
// records its outcome.
func runCell(ctx context.Context, t *testing.T, gw *gateway, srv *ftpServer, fx *fixtures,
	cl ftpClientKind, mode cellMode, ops opSet) {
	t.Helper()
	name := fmt.Sprintf("%s/%s/%s", cl.Name(), ops, mode)
	t.Run(name, func(t *testing.T) {
		key := cellResult{Client: cl.Name(), Backend: srv.Spec.String(), Mode: mode.String(), Ops: ops}
		if why := cl.Unsupported(mode); why != "" {
			key.Status, key.Note = statusNA, why
			results.addCell(key)
			t.Skipf("not applicable: %s", why)
		}
		dir := fmt.Sprintf("c-%s-%s-%s-%s-%s", cl.Name(), ops, mode.Front, mode.Data, strings.ReplaceAll(mode.TLS, ".", ""))
		srv.mkdir(t, dir)
		seed, err := os.ReadFile(fx.Seed)
		if err != nil {
			t.Fatal(err)
		}
		srv.putFile(t, dir+"/seed.bin", seed)
		if ops == opsFull {
			copyToServer(t, srv, fx.Abort, dir+"/abort.bin")
		}
		c := &cell{t: t, gw: gw, srv: srv, fx: fx, mode: mode, ops: ops, client: cl.Name(),
			Dir: dir, Local: t.TempDir()}
		logStart := fileSize(gw.proc.LogPath)
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		cl.Run(cctx, c, ops)
		cancel()
		key.Duration = time.Since(start)
		if ops == opsBig {
			// 256 MiB twice per backend: free the disk at once.
			os.Remove(srv.path(dir + "/big.bin"))
		}

		all := strings.Join(c.errs, "\n")
		if len(c.errs) > 0 {
			// The gateway may still be writing the lines of what failed
			// (a reply leaves before its log line): let them land.
			time.Sleep(time.Second)
		}
		gwLog := gw.logSince(logStart)
		known := findKnown(key.Client, key.Backend, key.Mode, ops)
		switch {
		case known != nil && len(c.errs) == 0:
			key.Status = statusFail
			t.Errorf("known limitation %q no longer fails: it passes now; remove it from knownLimitations", known.Reason)
		case known != nil && !strings.Contains(all+"\n"+c.transcript.String()+"\n"+gwLog, known.Match):
			key.Status = statusFail
			t.Errorf("known limitation %q: the cell fails, but not with %q:\n%s\n%s\n%s\n%s", known.Reason, known.Match,
				all, tail("transcript", c.transcript.String(), 12000), tail("gateway log of this cell", gwLog, 30000), srv.diagnostics())
		case known != nil:
			key.Status, key.Note = statusKnown, known.Reason
			t.Logf("known limitation (%s): %s", known.Reason, all)
		case len(c.errs) > 0:
			key.Status = statusFail
			key.Note = c.errs[0]
			t.Errorf("%s\n%s\n%s\n%s", all, tail("transcript", c.transcript.String(), 12000),
				tail("gateway log of this cell", gwLog, 30000), srv.diagnostics())
		default:
			key.Status = statusPass
		}
		results.addCell(key)
	})
}

func copyToServer(t *testing.T, srv *ftpServer, local, name string) {
	t.Helper()
	in, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(srv.path(name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(srv.path(name), srv.User.UID, srv.User.GID); err != nil {
		t.Fatal(err)
	}
}

func sumBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
