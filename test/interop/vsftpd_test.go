package interop

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
)

// tlsMode is how an FTP endpoint speaks TLS on its control connection.
type tlsMode string

const (
	tlsNone     tlsMode = "none"     // plain FTP
	tlsExplicit tlsMode = "explicit" // AUTH TLS on the FTP port (RFC 4217)
	tlsImplicit tlsMode = "implicit" // TLS from the first byte (FTPS)
)

// ftpUserName is the local account vsftpd authenticates through PAM.
const ftpUserName = "ftpsgate-it"

// ftpUserHome is the account's home: vsftpd enters it at login before
// local_root, so it must exist; the user owns nothing there.
const ftpUserHome = "/"

// ftpAccount is the local user and its password for this run.
type ftpAccount struct {
	Name     string
	Password string
	UID, GID int
}

// ensureAccount creates the local user once per run (if missing) and gives it
// a fresh random password hashed with SHA-512: Debian's default yescrypt
// costs ~86 ms per login. The shell is /bin/sh, which /etc/shells lists, so
// Debian's /etc/pam.d/vsftpd (pam_shells, /etc/ftpusers) lets it in.
var ensureAccount = sync.OnceValues(func() (ftpAccount, error) {
	if _, err := user.Lookup(ftpUserName); err != nil {
		out, err := exec.Command("useradd", "--no-create-home", "--home-dir", ftpUserHome,
			"--shell", "/bin/sh", "--comment", "ftpsgate interop tests", ftpUserName).CombinedOutput()
		if err != nil {
			return ftpAccount{}, fmt.Errorf("useradd %s: %v: %s", ftpUserName, err, out)
		}
	}
	u, err := user.Lookup(ftpUserName)
	if err != nil {
		return ftpAccount{}, err
	}
	if u.HomeDir != ftpUserHome {
		if out, err := exec.Command("usermod", "--home", ftpUserHome, ftpUserName).CombinedOutput(); err != nil {
			return ftpAccount{}, fmt.Errorf("usermod --home %s %s: %v: %s", ftpUserHome, ftpUserName, err, out)
		}
	}
	var rnd [12]byte
	if _, err := io.ReadFull(rand.Reader, rnd[:]); err != nil {
		return ftpAccount{}, err
	}
	a := ftpAccount{Name: ftpUserName, Password: "Pw-" + hex.EncodeToString(rnd[:])}
	cmd := exec.Command("chpasswd", "-c", "SHA512")
	cmd.Stdin = strings.NewReader(a.Name + ":" + a.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return ftpAccount{}, fmt.Errorf("chpasswd -c SHA512: %v: %s", err, out)
	}
	if a.UID, err = strconv.Atoi(u.Uid); err != nil {
		return ftpAccount{}, err
	}
	if a.GID, err = strconv.Atoi(u.Gid); err != nil {
		return ftpAccount{}, err
	}
	return a, nil
})

func account(t *testing.T) ftpAccount {
	t.Helper()
	a, err := ensureAccount()
	if err != nil {
		t.Fatalf("FTP user for vsftpd: %v", err)
	}
	return a
}

// vsftpd is one running vsftpd listener.
type vsftpd struct {
	Mode     tlsMode
	Addr     string // 127.0.0.1:port
	Root     string // the user's local_root: uploads land here
	CAFile   string // verifies the server's certificate (TLS modes)
	PasvLo   int    // pasv_min_port
	PasvHi   int    // pasv_max_port
	proc     *process
	xferLog  string
	User     ftpAccount
	confPath string
}

// startVsftpd starts vsftpd in the foreground on a free loopback port with its
// own passive range and a generated configuration, and waits until it
// accepts. TLS modes use a certificate generated now (SAN 127.0.0.1) and
// vsftpd's strict settings: TLS required for login and data, and
// require_ssl_reuse=YES (data connections must resume the control session).
func startVsftpd(ctx context.Context, t *testing.T, mode tlsMode) *vsftpd {
	t.Helper()
	return startVsftpdNet(ctx, t, mode, vsftpdNet{ListenIP: "127.0.0.1"})
}

// vsftpdNet places vsftpd: in a network namespace (NS, through ip netns
// exec; "" for the test's own) and on an address (ListenIP; with 0.0.0.0,
// Addr still names 127.0.0.1).
type vsftpdNet struct{ NS, ListenIP string }

// startVsftpdNet is startVsftpd placed as n says.
func startVsftpdNet(ctx context.Context, t *testing.T, mode tlsMode, n vsftpdNet) *vsftpd {
	t.Helper()
	bin := requireProgram(t, "vsftpd", "/usr/sbin", "/sbin")
	acct := account(t)

	dir := newDir(t, "vsftpd-", 0o711)
	root := filepath.Join(dir, "root")
	empty := filepath.Join(dir, "empty")
	for _, d := range []string{root, empty} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(root, acct.UID, acct.GID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	port := freePort(t)
	lo, hi := portRange(t, 20)
	v := &vsftpd{
		Mode:     mode,
		Addr:     net.JoinHostPort(connectIP(n.ListenIP), strconv.Itoa(port)),
		Root:     root,
		PasvLo:   lo,
		PasvHi:   hi,
		xferLog:  filepath.Join(dir, "vsftpd.log"),
		User:     acct,
		confPath: filepath.Join(dir, "vsftpd.conf"),
	}
	conf := []string{
		"listen=YES",
		"listen_ipv6=NO",
		"background=NO",
		"listen_address=" + n.ListenIP,
		"listen_port=" + strconv.Itoa(port),
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"local_root=" + root,
		"chroot_local_user=NO",
		"pam_service_name=vsftpd",
		"secure_chroot_dir=" + empty,
		// Containers often forbid seccomp filters and new namespaces.
		"seccomp_sandbox=NO",
		"isolate=NO",
		"isolate_network=NO",
		"connect_from_port_20=NO",
		"pasv_enable=YES",
		"pasv_min_port=" + strconv.Itoa(lo),
		"pasv_max_port=" + strconv.Itoa(hi),
		"dirmessage_enable=NO",
		"use_localtime=NO",
		"ftpd_banner=vsftpd interop backend (" + string(mode) + ")",
		"xferlog_enable=YES",
		"xferlog_std_format=NO",
		"log_ftp_protocol=YES",
		"vsftpd_log_file=" + v.xferLog,
	}
	if mode != tlsNone {
		pki := newPKI(t, dir)
		v.CAFile = pki.CAFile
		conf = append(conf,
			"ssl_enable=YES",
			"allow_anon_ssl=NO",
			"force_local_logins_ssl=YES",
			"force_local_data_ssl=YES",
			"require_ssl_reuse=YES",
			// vsftpd 3.0.3 (Debian 12) knows ssl_sslv2/ssl_sslv3/ssl_tlsv1
			// only: TLS 1.2 (and 1.3) are on; an unknown key such as
			// ssl_tlsv1_2 makes it refuse to start.
			"ssl_sslv2=NO",
			"ssl_sslv3=NO",
			"ssl_tlsv1=YES",
			// The 3.0.3 default, DES-CBC3-SHA, is gone from OpenSSL 3 and Go.
			"ssl_ciphers=HIGH",
			"rsa_cert_file="+pki.ChainFile,
			"rsa_private_key_file="+pki.KeyFile,
			"debug_ssl=YES",
		)
		if mode == tlsImplicit {
			conf = append(conf, "implicit_ssl=YES")
		}
	}
	if err := os.WriteFile(v.confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v.proc = startProcess(t, "vsftpd("+string(mode)+")", filepath.Join(dir, "stderr.log"), inNetns(n.NS, bin, v.confPath)...)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n.NS != "" {
		waitForPortIn(wctx, t, n.NS, v.Addr, v.proc)
		return v
	}
	waitForPort(wctx, t, v.Addr, v.proc)
	return v
}

// diagnostics is vsftpd's stderr and protocol log, for failure messages.
func (v *vsftpd) diagnostics() string {
	b, err := os.ReadFile(v.xferLog)
	s := string(b)
	if err != nil {
		s = err.Error()
	}
	return v.proc.logTail() + "\n" + tail("vsftpd protocol log "+v.xferLog, s, 6000)
}

// put copies a local file into the served directory, owned by the FTP user,
// without going through FTP.
func (v *vsftpd) put(t *testing.T, src, name string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(v.Root, name)
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
	if err := os.Chown(dst, v.User.UID, v.User.GID); err != nil {
		t.Fatal(err)
	}
}
