package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"
)

// goftpKind is the Go client github.com/jlaffaye/ftp, in process. It speaks
// only passive mode (EPSV, or PASV with DialWithDisabledEPSV) and has no
// ABOR; data connections resume the control session through a
// ClientSessionCache.
type goftpKind struct{}

func (goftpKind) Name() string { return "go-jlaffaye" }

func (goftpKind) Unsupported(m cellMode) string {
	if m.Data.active() {
		return "jlaffaye/ftp has no active mode (PORT/EPRT)"
	}
	return ""
}

// lockedWriter serialises the client's debug output into the transcript.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (goftpKind) Run(ctx context.Context, c *cell, ops opSet) {
	var debug lockedWriter
	defer func() { c.logf("%s", debug.b.String()) }()
	ver := uint16(tls.VersionTLS12)
	if c.mode.TLS == "1.3" {
		ver = tls.VersionTLS13
	}
	tc := &tls.Config{
		InsecureSkipVerify: true, // the gateway's self-signed certificate
		// The session cache is keyed by ServerName, else by the remote
		// address, which differs on every data connection: name the host
		// so that data connections resume the control session.
		ServerName: "127.0.0.1",
		MinVersion: ver, MaxVersion: ver,
		ClientSessionCache: tls.NewLRUClientSessionCache(8),
	}
	opts := []ftp.DialOption{
		ftp.DialWithContext(ctx), ftp.DialWithTimeout(30 * time.Second),
		ftp.DialWithDebugOutput(&debug),
		ftp.DialWithDisabledEPSV(c.mode.Data == dataPASV),
	}
	if c.mode.Front == tlsImplicit {
		opts = append(opts, ftp.DialWithTLS(tc))
	} else {
		opts = append(opts, ftp.DialWithExplicitTLS(tc))
	}
	conn, err := ftp.Dial(c.addr(), opts...)
	if err != nil {
		c.errorf("dial %s: %v", c.addr(), err)
		return
	}
	defer conn.Quit()
	if err := conn.Login(c.srv.User.Name, c.srv.User.Password); err != nil {
		c.errorf("login: %v", err)
		return
	}
	step := func(what string, err error) bool {
		if err != nil {
			c.errorf("%s: %v", what, err)
			return false
		}
		return true
	}
	stor := func(name, local string) bool {
		f, err := os.Open(local)
		if err != nil {
			c.errorf("%v", err)
			return false
		}
		defer f.Close()
		return step("STOR "+name, conn.Stor(name, f))
	}
	retr := func(name, local string, offset uint64) bool {
		r, err := conn.RetrFrom(name, offset)
		if !step("RETR "+name, err) {
			return false
		}
		f, err := os.Create(filepath.Join(c.Local, local))
		if err != nil {
			r.Close()
			c.errorf("%v", err)
			return false
		}
		_, cerr := io.Copy(f, r)
		f.Close()
		err = r.Close()
		return step("RETR "+name+" (data)", cerr) && step("RETR "+name+" (final reply)", err)
	}

	switch ops {
	case opsBig:
		if step("CWD", conn.ChangeDir(c.Dir)) && stor("big.bin", c.fx.Big) {
			c.expectServerFile("big.bin", c.fx.Big)
			if retr("big.bin", "big.bin", 0) {
				c.expectLocalFile("big.bin", c.fx.Big)
			}
		}
		return
	}

	// basic
	pwd, err := conn.CurrentDir()
	if step("PWD", err) && pwd == "" {
		c.errorf("PWD: empty")
	}
	if !step("CWD", conn.ChangeDir(c.Dir)) {
		return
	}
	step("MKD sub", conn.MakeDir("sub"))
	step("CWD sub", conn.ChangeDir("sub"))
	step("CDUP", conn.ChangeDirToParent())
	step("RMD sub", conn.RemoveDir("sub"))
	c.expectServerAbsent("sub")
	if stor("up.bin", c.fx.Src) {
		c.expectServerFile("up.bin", c.fx.Src)
	}
	if n, err := conn.FileSize("up.bin"); step("SIZE", err) && n != fileSize(c.fx.Src) {
		c.errorf("SIZE up.bin = %d, want %d", n, fileSize(c.fx.Src))
	}
	if retr("seed.bin", "seed.bin", 0) {
		c.expectLocalFile("seed.bin", c.fx.Seed)
	}
	if names, err := conn.NameList("."); step("NLST", err) && !slices.ContainsFunc(names, func(s string) bool { return filepath.Base(s) == "seed.bin" }) {
		c.errorf("NLST lacks seed.bin: %q", names)
	}
	// List is MLSD when the FEAT the gateway relays lists MLST, else LIST.
	if entries, err := conn.List("."); step("LIST/MLSD", err) && !slices.ContainsFunc(entries, func(e *ftp.Entry) bool { return e.Name == "seed.bin" }) {
		c.errorf("LIST/MLSD lacks seed.bin: %d entries", len(entries))
	}
	if ops != opsFull {
		return
	}

	// full
	const d, f = "dir ü space", "file ü space.bin"
	if step("MKD "+d, conn.MakeDir(d)) && step("CWD "+d, conn.ChangeDir(d)) {
		if stor(f, c.fx.Src) {
			c.expectServerFile(d+"/"+f, c.fx.Src)
			if retr(f, "utf8.bin", 0) {
				c.expectLocalFile("utf8.bin", c.fx.Src)
			}
		}
		step("CDUP", conn.ChangeDirToParent())
	}
	if stor("zero.bin", c.fx.Zero) {
		c.expectServerFile("zero.bin", c.fx.Zero)
		if retr("zero.bin", "zero.bin", 0) {
			c.expectLocalFile("zero.bin", c.fx.Zero)
		}
	}
	if tm, err := conn.GetTime("seed.bin"); step("MDTM", err) && time.Since(tm) > time.Hour {
		c.errorf("MDTM seed.bin = %v, want about now", tm)
	}
	if stor("app.bin", c.fx.Part1) {
		p2, _ := os.ReadFile(c.fx.Part2)
		if step("APPE app.bin", conn.Append("app.bin", bytes.NewReader(p2))) {
			c.expectServerFile("app.bin", c.fx.App)
		}
	}
	src, _ := os.ReadFile(c.fx.Src)
	half := len(src) / 2
	if step("STOR rs.bin", conn.Stor("rs.bin", bytes.NewReader(src[:half]))) &&
		step("REST+STOR rs.bin", conn.StorFrom("rs.bin", bytes.NewReader(src[half:]), uint64(half))) {
		c.expectServerFile("rs.bin", c.fx.Src)
	}
	if retr("seed.bin", "seed-tail.bin", uint64(c.fx.Rest)) {
		seed, _ := os.ReadFile(c.fx.Seed)
		c.expectLocalSum("seed-tail.bin", sumBytes(seed[c.fx.Rest:]), int64(len(seed))-c.fx.Rest)
	}
	if step("RNFR/RNTO", conn.Rename("up.bin", "renamed.bin")) {
		c.expectServerAbsent("up.bin")
		c.expectServerFile("renamed.bin", c.fx.Src)
	}
	if stor("gone.bin", c.fx.Part1) && step("DELE", conn.Delete("gone.bin")) {
		c.expectServerAbsent("gone.bin")
	}
	// ABOR: jlaffaye/ftp has none. Closing a download early (Response.Close
	// before EOF) is what it does instead; the session must go on.
	if r, err := conn.Retr("abort.bin"); step("RETR abort.bin", err) {
		buf := make([]byte, 256<<10)
		_, rerr := io.ReadFull(r, buf)
		step("RETR abort.bin (first 256 KiB)", rerr)
		cerr := r.Close()
		c.logf("early close of a download: Close() = %v", cerr)
		if cerr != nil && !strings.Contains(cerr.Error(), "426") && !strings.Contains(cerr.Error(), "451") {
			c.errorf("early close of a download: final reply %v, want 226, 426 or 451", cerr)
		}
		step("NOOP after the early close", conn.NoOp())
		if retr("seed.bin", "seed-after-abor.bin", 0) {
			c.expectLocalFile("seed-after-abor.bin", c.fx.Seed)
		}
	}
}
