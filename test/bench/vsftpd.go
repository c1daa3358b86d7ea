package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testvsftpd"
)

// benchUser is the local account vsftpd authenticates through PAM. It is
// not the interop tests' account: both may run at once, and each sets its
// own password.
const benchUser = "ftpsgate-bench"

// account is the local user and its password for this run.
type account = testvsftpd.Account

// ensureAccount creates the user if missing and gives it a fresh random
// password hashed with SHA-512 (testvsftpd.EnsureAccount): Debian's default
// yescrypt costs ~86 ms per login, which would make every target's
// sessions/s a measure of PAM.
func ensureAccount() (account, error) {
	return testvsftpd.EnsureAccount(benchUser, "ftpsgate benchmark")
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
	conf := testvsftpd.BaseConf("127.0.0.1", port, e.root, empty, pasv.lo, pasv.hi)
	conf = append(conf,
		"max_clients=0",
		"max_per_ip=0",
		"dirmessage_enable=NO",
		"use_localtime=NO",
		"xferlog_enable=NO",
		"ftpd_banner=vsftpd bench backend",
	)
	if tls {
		conf = append(conf, testvsftpd.TLSConf(e.pki.ChainFile, e.pki.KeyFile)...)
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
