package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// benchUser is the local account vsftpd authenticates through PAM. It is
// not the interop tests' account: both may run at once, and each sets its
// own password.
const benchUser = "ftpsgate-bench"

// account is the local user and its password for this run.
type account struct {
	Name, Password string
	UID, GID       int
}

// ensureAccount creates the user if missing (no home, shell /bin/sh, which
// Debian's pam_shells accepts) and gives it a fresh random password hashed
// with SHA-512: Debian's default yescrypt costs ~86 ms per login, which
// would make every target's sessions/s a measure of PAM.
func ensureAccount() (account, error) {
	if _, err := user.Lookup(benchUser); err != nil {
		out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/",
			"--shell", "/bin/sh", "--comment", "ftpsgate benchmark", benchUser).CombinedOutput()
		if err != nil {
			return account{}, fmt.Errorf("useradd %s: %v: %s", benchUser, err, out)
		}
	}
	u, err := user.Lookup(benchUser)
	if err != nil {
		return account{}, err
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return account{}, err
	}
	a := account{Name: benchUser, Password: "Pw-" + hex.EncodeToString(rnd[:])}
	cmd := exec.Command("chpasswd", "-c", "SHA512")
	cmd.Stdin = strings.NewReader(a.Name + ":" + a.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return account{}, fmt.Errorf("chpasswd -c SHA512: %v: %s", err, out)
	}
	if a.UID, err = strconv.Atoi(u.Uid); err != nil {
		return account{}, err
	}
	if a.GID, err = strconv.Atoi(u.Gid); err != nil {
		return account{}, err
	}
	return a, nil
}

// portBlock is a range of TCP ports for passive data connections.
type portBlock struct{ lo, hi int }

// Passive port ranges come from above Linux's default ephemeral range
// (32768-60999) and from the top of the remaining space, away from the
// interop tests (which count up from 61000 in blocks of 50).
var passiveBlocks = []portBlock{
	{63000, 63499}, // vsftpd plain
	{63500, 63999}, // vsftpd FTPS
	{64000, 64499}, // ftpsgate FTPS->plain
	{64500, 64999}, // ftpsgate FTPS->FTPS (and the 10,000-session gateway)
	{65000, 65249}, // mod_proxy FTPS->plain
	{65250, 65499}, // mod_proxy FTPS->FTPS
}

// checkBindable reports the first port of b that cannot be bound now.
func checkBindable(b portBlock) error {
	for p := b.lo; p <= b.hi; p++ {
		ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("passive port %d (range %d-%d) is in use: %w", p, b.lo, b.hi, err)
		}
		ln.Close()
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// vsftpd is one running vsftpd listener.
type vsftpd struct {
	TLS  bool
	Addr string
	proc *process
}

// startVsftpd starts vsftpd in the foreground, serving root as the bench
// user's local_root. With tls it is explicit FTPS with vsftpd's strict
// settings (TLS required for login and data, require_ssl_reuse=YES); the
// limits on clients are off, so that 1,000 idle sessions fit. Logging is
// off: it would cost every target the same, and is not what is measured.
func startVsftpd(ctx context.Context, e *env, tls bool, pasv portBlock) (*vsftpd, error) {
	bin, err := lookProgram("vsftpd", "/usr/sbin", "/sbin")
	if err != nil {
		return nil, err
	}
	name := "vsftpd-plain"
	if tls {
		name = "vsftpd-ftps"
	}
	dir := filepath.Join(e.dir, name)
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	v := &vsftpd{TLS: tls, Addr: loopback(port)}
	conf := []string{
		"listen=YES",
		"listen_ipv6=NO",
		"background=NO",
		"listen_address=127.0.0.1",
		"listen_port=" + strconv.Itoa(port),
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"local_root=" + e.root,
		"chroot_local_user=NO",
		"pam_service_name=vsftpd",
		"secure_chroot_dir=" + empty,
		// Containers often forbid seccomp filters and new namespaces.
		"seccomp_sandbox=NO",
		"isolate=NO",
		"isolate_network=NO",
		"connect_from_port_20=NO",
		"pasv_enable=YES",
		"pasv_min_port=" + strconv.Itoa(pasv.lo),
		"pasv_max_port=" + strconv.Itoa(pasv.hi),
		"max_clients=0",
		"max_per_ip=0",
		"dirmessage_enable=NO",
		"use_localtime=NO",
		"xferlog_enable=NO",
		"ftpd_banner=vsftpd bench backend",
	}
	if tls {
		conf = append(conf,
			"ssl_enable=YES",
			"allow_anon_ssl=NO",
			"force_local_logins_ssl=YES",
			"force_local_data_ssl=YES",
			"require_ssl_reuse=YES",
			// vsftpd 3.0.3 knows ssl_sslv2/ssl_sslv3/ssl_tlsv1 only: TLS 1.2
			// and 1.3 are on.
			"ssl_sslv2=NO",
			"ssl_sslv3=NO",
			"ssl_tlsv1=YES",
			// The 3.0.3 default, DES-CBC3-SHA, is gone from OpenSSL 3.
			"ssl_ciphers=HIGH",
			"rsa_cert_file="+e.pki.ChainFile,
			"rsa_private_key_file="+e.pki.KeyFile,
		)
	}
	confPath := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	v.proc, err = startProcess(name, filepath.Join(dir, "stderr.log"), nil, bin, confPath)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return v, waitForPort(wctx, v.Addr, v.proc)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// lookProgram finds a program in PATH or in the extra directories.
func lookProgram(name string, dirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(name + " not found (apt-get install " + name + ")")
}
