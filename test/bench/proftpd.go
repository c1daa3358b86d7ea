package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// proftpdPrefix is where ProFTPD and mod_proxy are unpacked: Debian's
// proftpd-core conflicts with vsftpd as a package, so it is not installed
// but extracted from its .deb and run from there.
const proftpdPrefix = "/opt/ftpsgate-bench"

// proftpdDebs are the packages unpacked into proftpdPrefix: ProFTPD, its
// TLS (mod_tls is in proftpd-mod-crypto) and proxy modules, and the
// libraries proftpd links that a machine with vsftpd lacks.
var proftpdDebs = []string{
	"proftpd-core", "proftpd-mod-crypto", "proftpd-mod-proxy",
	"libhiredis0.14", "libmemcached11", "libmemcachedutil2", "libhashkit2",
	"libpcre2-posix3", "libsodium23",
}

func proftpdBin() string { return filepath.Join(proftpdPrefix, "usr/sbin/proftpd") }

func proftpdEnv() []string {
	return []string{"LD_LIBRARY_PATH=" + filepath.Join(proftpdPrefix, "usr/lib/x86_64-linux-gnu")}
}

// ensureProftpd makes sure proftpd with mod_proxy runs from proftpdPrefix,
// unpacking the Debian packages there (apt-get download, dpkg-deb -x) if
// needed. The error says why mod_proxy cannot be measured.
func ensureProftpd(ctx context.Context, tmp string) error {
	if err := proftpdRuns(ctx); err == nil {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return errors.New("apt-get not found: cannot fetch proftpd-mod-proxy")
	}
	dl := filepath.Join(tmp, "debs")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return err
	}
	download := func() ([]byte, error) {
		c, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(c, "apt-get", append([]string{"download", "-q"}, proftpdDebs...)...)
		cmd.Dir = dl
		return cmd.CombinedOutput()
	}
	if _, err := download(); err != nil {
		// A fresh machine has no package lists yet.
		c, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_ = exec.CommandContext(c, "apt-get", "update", "-q").Run()
		cancel()
		if out, err := download(); err != nil {
			return fmt.Errorf("apt-get download %s: %v: %s", strings.Join(proftpdDebs, " "), err, lastLine(out))
		}
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) == 0 {
		return errors.New("apt-get download fetched no .deb")
	}
	if err := os.MkdirAll(proftpdPrefix, 0o755); err != nil {
		return err
	}
	for _, d := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", d, proftpdPrefix).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %v: %s", filepath.Base(d), err, out)
		}
	}
	return proftpdRuns(ctx)
}

func proftpdRuns(ctx context.Context) error {
	for _, f := range []string{proftpdBin(), filepath.Join(proftpdPrefix, "usr/lib/proftpd/mod_proxy.so"),
		filepath.Join(proftpdPrefix, "usr/lib/proftpd/mod_tls.so")} {
		if _, err := os.Stat(f); err != nil {
			return err
		}
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(c, proftpdBin(), "-v")
	cmd.Env = append(os.Environ(), proftpdEnv()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s -v: %v: %s", proftpdBin(), err, lastLine(out))
	}
	return nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// modProxy is a running ProFTPD with mod_proxy as a reverse proxy.
type modProxy struct {
	Addr string
	proc *process
}

// startModProxy runs proftpd in the foreground (-n) as a reverse proxy in
// front of backendAddr, with explicit FTPS required from clients (mod_tls,
// the same certificate as everyone, TLS 1.2+, data channel session reuse
// required, its default) and, with backendTLS, FTPS to the backend with the
// certificate verified. mod_delay is off (it pads logins against timing
// attacks, which would make sessions/s a measure of its padding), as are
// reverse DNS and the limits on clients.
func startModProxy(ctx context.Context, e *env, name, backendAddr string, backendTLS bool, pasv portBlock) (*modProxy, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &modProxy{Addr: loopback(port)}
	dir := filepath.Join(e.dir, name)
	tables := filepath.Join(dir, "tables")
	if err := os.MkdirAll(tables, 0o755); err != nil {
		return nil, err
	}
	beTLS := "ProxyTLSEngine off"
	if backendTLS {
		beTLS = "ProxyTLSEngine on\nProxyTLSCACertificateFile " + e.pki.CAFile + "\nProxyTLSVerifyServer on"
	}
	conf := strings.NewReplacer(
		"@PORT@", strconv.Itoa(port), "@DIR@", dir,
		"@PASVLO@", strconv.Itoa(pasv.lo), "@PASVHI@", strconv.Itoa(pasv.hi),
		"@PREFIX@", proftpdPrefix, "@CERT@", e.pki.CertFile, "@KEY@", e.pki.KeyFile,
		"@CA@", e.pki.CAFile, "@TABLES@", tables, "@BACKEND@", backendAddr, "@BACKENDTLS@", beTLS,
	).Replace(`ServerType standalone
ServerName "mod_proxy bench"
DefaultServer on
Port @PORT@
DefaultAddress 127.0.0.1
SocketBindTight on
UseIPv6 off
User nobody
Group nogroup
PidFile @DIR@/proftpd.pid
ScoreboardFile @DIR@/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
MaxInstances 20000
TCPBacklog 255
PassivePorts @PASVLO@ @PASVHI@
ModulePath @PREFIX@/usr/lib/proftpd
LoadModule mod_tls.c
LoadModule mod_proxy.c
SystemLog @DIR@/proftpd.log
TransferLog none
TimeoutIdle 600
<IfModule mod_delay.c>
  DelayEngine off
</IfModule>
<IfModule mod_tls.c>
  TLSEngine on
  TLSProtocol TLSv1.2 TLSv1.3
  TLSRequired on
  TLSECCertificateFile @CERT@
  TLSECCertificateKeyFile @KEY@
  TLSCertificateChainFile @CA@
  TLSVerifyClient off
</IfModule>
<IfModule mod_proxy.c>
  ProxyEngine on
  ProxyLog @DIR@/proxy.log
  ProxyTables @TABLES@
  ProxyRole reverse
  ProxyReverseConnectPolicy RoundRobin
  ProxyReverseServers ftp://@BACKEND@
  @BACKENDTLS@
</IfModule>
`)
	confPath := filepath.Join(dir, "proftpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	m.proc, err = startProcess(name, filepath.Join(dir, "stderr.log"), proftpdEnv(), proftpdBin(), "-n", "-c", confPath)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return m, waitForPort(wctx, m.Addr, m.proc)
}
