package interop

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testvsftpd"
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

// ftpAccount is the local user and its password for this run.
type ftpAccount = testvsftpd.Account

// ensureAccount creates the local user once per run (if missing) and gives
// it a fresh random password (testvsftpd.EnsureAccount).
func ensureAccount() (ftpAccount, error) {
	return testvsftpd.EnsureAccount(ftpUserName, "ftpsgate interop tests")
}

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
// Addr still names 127.0.0.1). Extra lines end vsftpd.conf (a later key
// overrides an earlier one: pasv_address=..., pasv_min_port=...).
type vsftpdNet struct {
	NS, ListenIP string
	Extra        []string
}

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
	conf := testvsftpd.BaseConf(n.ListenIP, port, root, empty, lo, hi)
	conf = append(conf,
		"dirmessage_enable=NO",
		"use_localtime=NO",
		"ftpd_banner=vsftpd interop backend ("+string(mode)+")",
		"xferlog_enable=YES",
		"xferlog_std_format=NO",
		"log_ftp_protocol=YES",
		"vsftpd_log_file="+v.xferLog,
	)
	if mode != tlsNone {
		pki := newPKI(t, dir)
		v.CAFile = pki.CAFile
		conf = append(conf, testvsftpd.TLSConf(pki.ChainFile, pki.KeyFile)...)
		conf = append(conf,
			"debug_ssl=YES",
		)
		if mode == tlsImplicit {
			conf = append(conf, "implicit_ssl=YES")
		}
	}
	conf = append(conf, n.Extra...)
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
	return v.proc.LogTail() + "\n" + tail("vsftpd protocol log "+v.xferLog, s, 6000)
}

// put copies a local file into the served directory, owned by the FTP user,
// without going through FTP.
func (v *vsftpd) put(t *testing.T, src, name string) {
	t.Helper()
	testvsftpd.PutFile(t, src, filepath.Join(v.Root, name), v.User)
}
