package testvsftpd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
	"github.com/ftpsgate/ftpsgate/internal/testproc"
)

// UserName is the local account vsftpd authenticates through PAM.
const UserName = "ftpsgate-it"

// Account is the local user and its password for this run.
type Account struct {
	Name, Password string
	UID, GID       int
}

// ensureAccount creates the user once per run (home /, shell /bin/sh,
// which Debian's /etc/pam.d/vsftpd accepts) and sets a fresh password
// hashed with SHA-512 (yescrypt costs ~86 ms per login).
var ensureAccount = sync.OnceValues(func() (Account, error) {
	if _, err := user.Lookup(UserName); err != nil {
		out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/",
			"--shell", "/bin/sh", "--comment", "ftpsgate interop tests", UserName).CombinedOutput()
		if err != nil {
			return Account{}, fmt.Errorf("useradd %s: %v: %s", UserName, err, out)
		}
	}
	u, err := user.Lookup(UserName)
	if err != nil {
		return Account{}, err
	}
	var rnd [12]byte
	if _, err := io.ReadFull(rand.Reader, rnd[:]); err != nil {
		return Account{}, err
	}
	a := Account{Name: UserName, Password: "Pw-" + hex.EncodeToString(rnd[:])}
	cmd := exec.Command("chpasswd", "-c", "SHA512")
	cmd.Stdin = strings.NewReader(a.Name + ":" + a.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Account{}, fmt.Errorf("chpasswd -c SHA512: %v: %s", err, out)
	}
	a.UID, _ = strconv.Atoi(u.Uid)
	a.GID, _ = strconv.Atoi(u.Gid)
	return a, nil
})

// Options are where vsftpd listens: a loopback port and its passive range.
type Options struct {
	Port           int
	PasvLo, PasvHi int
	PKI            *testpki.Files // its certificate (for 127.0.0.1); nil: made now
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
	acct, err := ensureAccount()
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
	conf := []string{
		"listen=YES", "listen_ipv6=NO", "background=NO",
		"listen_address=127.0.0.1", "listen_port=" + strconv.Itoa(o.Port),
		"anonymous_enable=NO", "local_enable=YES", "write_enable=YES", "local_umask=022",
		"local_root=" + root, "chroot_local_user=NO", "pam_service_name=vsftpd",
		"secure_chroot_dir=" + empty,
		// Containers often forbid seccomp filters and new namespaces.
		"seccomp_sandbox=NO", "isolate=NO", "isolate_network=NO",
		"connect_from_port_20=NO", "pasv_enable=YES",
		"pasv_min_port=" + strconv.Itoa(o.PasvLo), "pasv_max_port=" + strconv.Itoa(o.PasvHi),
		"dirmessage_enable=NO", "use_localtime=NO", "ftpd_banner=vsftpd test backend",
		"xferlog_enable=YES", "xferlog_std_format=NO", "log_ftp_protocol=YES", "vsftpd_log_file=" + s.log,
		"ssl_enable=YES", "allow_anon_ssl=NO", "force_local_logins_ssl=YES", "force_local_data_ssl=YES",
		"require_ssl_reuse=YES", "ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_tlsv1=YES",
		// The 3.0.3 default, DES-CBC3-SHA, is gone from OpenSSL 3 and Go.
		"ssl_ciphers=HIGH",
		"rsa_cert_file=" + pki.ChainFile, "rsa_private_key_file=" + pki.KeyFile,
	}
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
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(s.Root, name)
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
	if err := os.Chown(dst, s.User.UID, s.User.GID); err != nil {
		t.Fatal(err)
	}
}
