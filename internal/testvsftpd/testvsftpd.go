package testvsftpd

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// Options are where vsftpd listens: a loopback port and its passive range.
type Options struct {
	Port           int
	PasvLo, PasvHi int
	PKI            *testpki.Files // its certificate (for 127.0.0.1); nil: made now
	User           string         // the PAM account; "" is UserName
}

// Server is a running vsftpd.
type Server struct {
	Addr   string // 127.0.0.1:port
	Root   string // the user's local_root: uploads land here
	CAFile string // verifies the server's certificate
	User   Account
	Proc   *testproc.Process
	log    string
}

// Start starts vsftpd with explicit FTPS and waits until it accepts.
func Start(ctx context.Context, t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("vsftpd")
	if err != nil {
		bin = "/usr/sbin/vsftpd"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vsftpd not found (apt-get install vsftpd): %v", err)
	}
	name := o.User
	if name == "" {
		name = UserName
	}
	acct, err := EnsureAccount(name, "ftpsgate fleet tests")
	if err != nil {
		t.Fatalf("FTP user for vsftpd: %v", err)
	}
	dir, err := os.MkdirTemp("", "ftpsgate-vsftpd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	root, empty := filepath.Join(dir, "root"), filepath.Join(dir, "empty")
	for _, d := range []string{root, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, acct.UID, acct.GID); err != nil {
		t.Fatal(err)
	}
	pki := o.PKI
	if pki == nil {
		if pki, err = testpki.WriteServer(dir, "ftpsgate vsftpd test CA"); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)), Root: root, CAFile: pki.CAFile, User: acct, log: filepath.Join(dir, "vsftpd.log")}
	conf := BaseConf("127.0.0.1", o.Port, root, empty, o.PasvLo, o.PasvHi)
	conf = append(conf,
		"dirmessage_enable=NO", "use_localtime=NO", "ftpd_banner=vsftpd test backend",
		"xferlog_enable=YES", "xferlog_std_format=NO", "log_ftp_protocol=YES", "vsftpd_log_file="+s.log)
	conf = append(conf, TLSConf(pki.ChainFile, pki.KeyFile)...)
	confPath := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Proc = testproc.Start(t, "vsftpd", filepath.Join(dir, "stderr.log"), nil, bin, confPath)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	testproc.WaitPort(wctx, t, s.Addr, s.Proc)
	return s
}

// Diagnostics is vsftpd's output and protocol log, for failure messages.
func (s *Server) Diagnostics() string {
	b, _ := os.ReadFile(s.log)
	return s.Proc.LogTail() + "\n" + testproc.Tail("vsftpd protocol log", string(b), 6000)
}

// Put copies a local file into the served directory, owned by the user.
func (s *Server) Put(t testing.TB, src, name string) {
	t.Helper()
	PutFile(t, src, filepath.Join(s.Root, name), s.User)
}

// PutFile copies the local file src to dst, owned by the account a, without
// going through FTP.
func PutFile(t testing.TB, src, dst string, a Account) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, a.UID, a.GID); err != nil {
		t.Fatal(err)
	}
}
