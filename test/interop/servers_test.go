package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unpackDir is where .ci/run unpacks the FTP servers that conflict with the
// installed vsftpd as Debian packages (Conflicts: ftp-server): apt-get
// download + dpkg-deb -x into unpackDir/<package>.
const unpackDir = "/opt/ftpsgate-interop"

// systemPython is Debian's interpreter, the one python3-pyftpdlib installs
// into (a python3 earlier in PATH, e.g. pyenv's, lacks the module).
const systemPython = "/usr/bin/python3"

// serverKind names an FTP server program.
type serverKind string

const (
	kindVsftpd    serverKind = "vsftpd"
	kindProftpd   serverKind = "proftpd"
	kindPureftpd  serverKind = "pure-ftpd"
	kindPyftpdlib serverKind = "pyftpdlib"
)

// backendSpec is one backend configuration of the matrix.
type backendSpec struct {
	Kind serverKind
	Mode tlsMode
}

func (b backendSpec) String() string { return string(b.Kind) + "/" + string(b.Mode) }

// matrixBackends are the backends the matrix runs: every TLS mode each server
// supports (ProFTPD's implicit mode and Pure-FTPd's are left out: Debian's
// Pure-FTPd is built without it, and issue 3 scopes ProFTPD to plain and
// explicit).
var matrixBackends = []backendSpec{
	{kindVsftpd, tlsNone}, {kindVsftpd, tlsExplicit}, {kindVsftpd, tlsImplicit},
	{kindProftpd, tlsNone}, {kindProftpd, tlsExplicit},
	{kindPureftpd, tlsNone}, {kindPureftpd, tlsExplicit},
	{kindPyftpdlib, tlsNone}, {kindPyftpdlib, tlsExplicit},
}

// ftpServer is a running backend of any kind.
type ftpServer struct {
	Spec   backendSpec
	Addr   string
	Root   string // the user's directory: uploads land here
	CAFile string // verifies the server's certificate (TLS modes)
	User   ftpAccount
	proc   *process
	logs   []string // files worth showing when a case fails
}

// diagnostics is the server's output and logs, for failure messages.
func (s *ftpServer) diagnostics() string {
	out := []string{s.proc.LogTail()}
	for _, l := range s.logs {
		b, err := os.ReadFile(l)
		txt := string(b)
		if err != nil {
			txt = err.Error()
		}
		out = append(out, tail(s.Spec.String()+" log "+l, txt, 4000))
	}
	return strings.Join(out, "\n")
}

// path is where name (slash-separated, relative to the login directory)
// lives on the server's disk.
func (s *ftpServer) path(name string) string {
	return filepath.Join(s.Root, filepath.FromSlash(name))
}

// putFile writes data as name on the server's disk, owned by the FTP user.
func (s *ftpServer) putFile(t *testing.T, name string, data []byte) {
	t.Helper()
	p := s.path(name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, s.User.UID, s.User.GID); err != nil {
		t.Fatal(err)
	}
}

// mkdir makes name on the server's disk, owned by the FTP user.
func (s *ftpServer) mkdir(t *testing.T, name string) {
	t.Helper()
	p := s.path(name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, s.User.UID, s.User.GID); err != nil {
		t.Fatal(err)
	}
}

// startServer starts the backend of spec on loopback with a generated
// configuration and its own passive range.
func startServer(ctx context.Context, t *testing.T, spec backendSpec) *ftpServer {
	t.Helper()
	switch spec.Kind {
	case kindVsftpd:
		v := startVsftpd(ctx, t, spec.Mode)
		return &ftpServer{Spec: spec, Addr: v.Addr, Root: v.Root, CAFile: v.CAFile, User: v.User,
			proc: v.proc, logs: []string{v.xferLog}}
	case kindProftpd:
		return startProftpd(ctx, t, spec.Mode)
	case kindPureftpd:
		return startPureftpd(ctx, t, spec.Mode)
	case kindPyftpdlib:
		return startPyftpdlib(ctx, t, spec.Mode)
	}
	t.Fatalf("unknown server %s", spec)
	return nil
}

// serverDir makes the server's directory (configuration, logs) and the
// user's root in it, owned by the user.
func serverDir(t *testing.T, kind serverKind, acct ftpAccount) (dir, root string) {
	t.Helper()
	dir = newDir(t, string(kind)+"-", 0o711)
	t.Cleanup(func() { os.RemoveAll(dir) })
	root = filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, acct.UID, acct.GID); err != nil {
		t.Fatal(err)
	}
	return dir, root
}

func waitServer(ctx context.Context, t *testing.T, s *ftpServer) *ftpServer {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	waitForPort(wctx, t, s.Addr, s.proc)
	return s
}

// sha512Crypt hashes password in the crypt(3) "$6$" format (openssl passwd).
func sha512Crypt(t *testing.T, password string) string {
	t.Helper()
	bin := requireProgram(t, "openssl", "/usr/bin")
	cmd := exec.Command(bin, "passwd", "-6", "-stdin")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl passwd -6: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// startProftpd runs ProFTPD (Debian's proftpd-core, unpacked under
// unpackDir) in the foreground: users from an AuthUserFile, chrooted to the
// root, mod_tls (proftpd-mod-crypto) loaded from the unpacked module dir for
// explicit FTPS with TLS required on control and data. mod_tls requires TLS
// session reuse on data connections by default, like vsftpd. extra is
// appended to the configuration; it may name files in dir(s.Root).
func startProftpd(ctx context.Context, t *testing.T, mode tlsMode, extra ...string) *ftpServer {
	t.Helper()
	pkg := filepath.Join(unpackDir, "proftpd-core")
	bin := requireProgram(t, "proftpd", filepath.Join(pkg, "usr/sbin"))
	modDir := filepath.Join(pkg, "usr/lib/proftpd")
	if mode == tlsImplicit {
		t.Fatalf("proftpd: implicit FTPS is not in the matrix")
	}
	acct := account(t)
	dir, root := serverDir(t, kindProftpd, acct)
	passwd := filepath.Join(dir, "passwd")
	line := fmt.Sprintf("%s:%s:%d:%d::%s:/bin/sh\n", acct.Name, sha512Crypt(t, acct.Password), acct.UID, acct.GID, root)
	if err := os.WriteFile(passwd, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	// A whole block: ProFTPD picks passive ports at random and answers 425
	// "Address already in use" when it hits one still taken, which 20 ports
	// under rclone's 16 parallel connections do.
	lo, hi := portRange(t, rangeBlock)
	s := &ftpServer{
		Spec: backendSpec{kindProftpd, mode}, Addr: loopbackAddr(port), Root: root, User: acct,
		logs: []string{filepath.Join(dir, "system.log"), filepath.Join(dir, "xfer.log")},
	}
	conf := []string{
		"ServerType standalone",
		`ServerName "proftpd interop backend (` + string(mode) + `)"`,
		"DefaultAddress 127.0.0.1",
		"SocketBindTight on",
		"UseIPv6 off",
		"Port " + strconv.Itoa(port),
		"User nobody",
		"Group nogroup",
		"ModulePath " + modDir,
		"PidFile " + filepath.Join(dir, "proftpd.pid"),
		"ScoreboardFile " + filepath.Join(dir, "proftpd.scoreboard"),
		"DelayTable none",
		"WtmpLog off",
		"UseReverseDNS off",
		"AuthOrder mod_auth_file.c",
		"AuthUserFile " + passwd,
		"RequireValidShell off",
		"DefaultRoot ~",
		"PassivePorts " + strconv.Itoa(lo) + " " + strconv.Itoa(hi),
		"Umask 022",
		"AllowOverwrite on",
		"AllowStoreRestart on",
		"AllowRetrieveRestart on",
		"MaxInstances 64",
		"TransferLog " + filepath.Join(dir, "xfer.log"),
		"SystemLog " + filepath.Join(dir, "system.log"),
	}
	if mode == tlsExplicit {
		pki := newPKI(t, dir)
		s.CAFile = pki.CAFile
		s.logs = append(s.logs, filepath.Join(dir, "tls.log"))
		conf = append(conf,
			"LoadModule mod_tls.c",
			"TLSEngine on",
			"TLSLog "+filepath.Join(dir, "tls.log"),
			"TLSProtocol TLSv1.2 TLSv1.3",
			"TLSECCertificateFile "+pki.ChainFile,
			"TLSECCertificateKeyFile "+pki.KeyFile,
			"TLSRequired on",
			"TLSVerifyClient off",
		)
	}
	conf = append(conf, extra...)
	confPath := filepath.Join(dir, "proftpd.conf")
	if err := os.WriteFile(confPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.proc = startProcess(t, "proftpd("+string(mode)+")", filepath.Join(dir, "stderr.log"), bin, "-n", "-q", "-c", confPath)
	return waitServer(ctx, t, s)
}

// startPureftpd runs Pure-FTPd (Debian's pure-ftpd, unpacked under
// unpackDir) in the foreground with one virtual user in a PureDB whose home
// is the root, everyone chrooted; explicit mode requires TLS (-Y 2).
func startPureftpd(ctx context.Context, t *testing.T, mode tlsMode) *ftpServer {
	t.Helper()
	pkg := filepath.Join(unpackDir, "pure-ftpd")
	bin := requireProgram(t, "pure-ftpd", filepath.Join(pkg, "usr/sbin"))
	pw := requireProgram(t, "pure-pw", filepath.Join(pkg, "usr/bin"))
	if mode == tlsImplicit {
		t.Fatalf("pure-ftpd: Debian's build has no implicit FTPS")
	}
	acct := account(t)
	dir, root := serverDir(t, kindPureftpd, acct)
	pdb := filepath.Join(dir, "pureftpd.pdb")
	cmd := exec.Command(pw, "useradd", acct.Name, "-u", strconv.Itoa(acct.UID), "-g", strconv.Itoa(acct.GID),
		"-d", root, "-f", filepath.Join(dir, "pureftpd.passwd"), "-m", "-F", pdb)
	cmd.Stdin = strings.NewReader(acct.Password + "\n" + acct.Password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pure-pw useradd: %v\n%s", err, out)
	}
	port := freePort(t)
	lo, hi := portRange(t, 20)
	s := &ftpServer{Spec: backendSpec{kindPureftpd, mode}, Addr: loopbackAddr(port), Root: root, User: acct,
		logs: []string{filepath.Join(dir, "transfer.log")}}
	argv := []string{bin,
		"-S", "127.0.0.1," + strconv.Itoa(port),
		"-p", strconv.Itoa(lo) + ":" + strconv.Itoa(hi),
		"-l", "puredb:" + pdb,
		"-E", "-A", "-H", "-4",
		"-u", "1", // the test user's uid is > 1000 anyway
		"-c", "64", "-C", "64",
		"-O", "clf:" + filepath.Join(dir, "transfer.log"),
		"-g", filepath.Join(dir, "pure-ftpd.pid"),
	}
	if mode == tlsExplicit {
		pki := newPKI(t, dir)
		s.CAFile = pki.CAFile
		argv = append(argv, "-Y", "2", "-2", pki.ChainFile+","+pki.KeyFile)
	}
	s.proc = startProcess(t, "pure-ftpd("+string(mode)+")", filepath.Join(dir, "stderr.log"), argv...)
	return waitServer(ctx, t, s)
}

// startPyftpdlib runs testdata/pyftpd_server.py with Debian's python3 and
// python3-pyftpdlib: FTPHandler, or TLS_FTPHandler (explicit, TLS required
// on control and data).
func startPyftpdlib(ctx context.Context, t *testing.T, mode tlsMode) *ftpServer {
	t.Helper()
	if _, err := os.Stat(systemPython); err != nil {
		t.Fatalf("%s: %v (apt-get install python3-pyftpdlib)", systemPython, err)
	}
	if out, err := exec.Command(systemPython, "-c", "import pyftpdlib, OpenSSL").CombinedOutput(); err != nil {
		t.Fatalf("%s lacks pyftpdlib or pyOpenSSL (apt-get install python3-pyftpdlib python3-openssl): %v\n%s", systemPython, err, out)
	}
	if mode == tlsImplicit {
		t.Fatalf("pyftpdlib: implicit FTPS is not in the matrix")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "pyftpd_server.py"))
	if err != nil {
		t.Fatal(err)
	}
	acct := account(t)
	dir, root := serverDir(t, kindPyftpdlib, acct)
	port := freePort(t)
	lo, hi := portRange(t, 20)
	s := &ftpServer{Spec: backendSpec{kindPyftpdlib, mode}, Addr: loopbackAddr(port), Root: root, User: acct}
	argv := []string{systemPython, script, "127.0.0.1", strconv.Itoa(port), strconv.Itoa(lo), strconv.Itoa(hi),
		root, acct.Name, acct.Password}
	if mode == tlsExplicit {
		pki := newPKI(t, dir)
		s.CAFile = pki.CAFile
		argv = append(argv, pki.ChainFile, pki.KeyFile)
	}
	s.proc = startProcess(t, "pyftpdlib("+string(mode)+")", filepath.Join(dir, "stderr.log"), argv...)
	return waitServer(ctx, t, s)
}

// hostPort splits a loopback address.
func hostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}
