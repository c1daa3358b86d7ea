package testicap

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvInterop is the switch that turns the tests with real programs on.
const EnvInterop = "FTPSGATE_INTEROP"

// The programs of the Debian packages.
const (
	CICAPPath  = "/usr/bin/c-icap"
	ClamdPath  = "/usr/sbin/clamd"
	SigtoolBin = "/usr/bin/sigtool"
)

// The ICAP services: Service is virus_scan in its simple mode (the verdict
// after the whole body, the threat named in the reply's headers: the
// "avscan" alias of Debian's virus_scan.conf); ServiceDefault is
// virus_scan as it comes, which begins to answer before the body ends and,
// finding a threat then, cuts the body it sends back.
const (
	Service        = "avscan"
	ServiceDefault = "virus_scan"
)

// startTimeout bounds the wait for a program to be ready.
const startTimeout = 60 * time.Second

// ModuleDir is c-icap's module directory (the machine's multiarch one),
// "" when virus_scan.so is not there.
func ModuleDir() string {
	m, _ := filepath.Glob("/usr/lib/*/c_icap/virus_scan.so")
	if len(m) == 0 {
		return ""
	}
	return filepath.Dir(m[0])
}

// Require skips t without the interop switch and fails it when the
// switch is on and a program is missing.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvInterop) != "1" {
		t.Skip("set " + EnvInterop + "=1 to run the tests with a real c-icap and ClamAV")
	}
	for _, p := range []string{CICAPPath, ClamdPath, SigtoolBin} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=1 but %s is missing (apt-get install c-icap libc-icap-mod-virus-scan clamav clamav-daemon): %v", EnvInterop, p, err)
		}
	}
	if ModuleDir() == "" {
		t.Fatalf("%s=1 but c-icap's virus_scan.so is missing (apt-get install libc-icap-mod-virus-scan)", EnvInterop)
	}
}

// Server is a running c-icap with virus_scan over a running clamd.
type Server struct {
	Addr       string // 127.0.0.1:port
	t          testing.TB
	dir        string // configurations and logs
	sock       string // the short directory of the sockets and c-icap's files
	conf       string
	icap       *exec.Cmd
	icapExited chan struct{}
	// threats names the signatures by their file's SHA-256 name.
	threats []string
}

// Start starts clamd with signatures for the given files (the i-th named
// Threat(i)) and c-icap in front of it; t.Cleanup stops both. It calls
// Require first.
func Start(t testing.TB, infected ...[]byte) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, dir: t.TempDir()}
	sock, err := os.MkdirTemp("", "ticap")
	if err != nil {
		t.Fatal(err)
	}
	s.sock = sock
	t.Cleanup(func() { _ = os.RemoveAll(sock) })
	db := filepath.Join(s.dir, "db")
	tmp := filepath.Join(sock, "tmp")
	for _, d := range []string{db, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if len(infected) == 0 {
		infected = [][]byte{[]byte("ftpsgate testicap placeholder signature")}
	}
	var hsb bytes.Buffer
	for i, data := range infected {
		f := filepath.Join(s.dir, fmt.Sprintf("sample%d.bin", i))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(SigtoolBin, "--sha256", f).Output()
		if err != nil {
			t.Fatalf("sigtool --sha256: %v", err)
		}
		// HASH:SIZE:NAME; the name is the file's: make it ours.
		parts := strings.SplitN(strings.TrimSpace(string(out)), ":", 3)
		if len(parts) != 3 {
			t.Fatalf("sigtool --sha256: unexpected output %q", out)
		}
		name := fmt.Sprintf("Ftpsgate.Test.Sig%d", i)
		fmt.Fprintf(&hsb, "%s:%s:%s\n", parts[0], parts[1], name)
		s.threats = append(s.threats, name+".UNOFFICIAL")
	}
	if err := os.WriteFile(filepath.Join(db, "test.hsb"), hsb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	clamdSock := filepath.Join(sock, "clamd.sock")
	clamdConf := filepath.Join(s.dir, "clamd.conf")
	cc := fmt.Sprintf("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\nLogFile %s\nTemporaryDirectory %s\nSelfCheck 0\n",
		clamdSock, db, filepath.Join(s.dir, "clamd.log"), tmp)
	if root {
		cc += "User root\n"
	}
	if err := os.WriteFile(clamdConf, []byte(cc), 0o600); err != nil {
		t.Fatal(err)
	}
	clamd := exec.Command(ClamdPath, "-c", clamdConf)
	clamd.Stdout, clamd.Stderr = s.logFile("clamd.out"), s.logFile("clamd.out")
	clamd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := clamd.Start(); err != nil {
		t.Fatalf("starting clamd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = clamd.Wait(); close(exited) }()
	t.Cleanup(func() { stopGroup(clamd, exited) })
	if err := waitFor(exited, func() error { return pingClamd(clamdSock) }); err != nil {
		t.Fatalf("clamd did not start: %v\n%s", err, s.tail("clamd.out", "clamd.log"))
	}

	s.Addr = freePort(t)
	s.conf = filepath.Join(s.dir, "c-icap.conf")
	ic := fmt.Sprintf(`PidFile %[1]s/c-icap.pid
CommandsSocket %[1]s/c-icap.ctl
Timeout 30
Port %[2]s
StartServers 1
MaxServers 2
MinSpareThreads 2
MaxSpareThreads 8
ThreadsPerChild 8
MaxKeepAliveRequests 100
KeepAliveTimeout 60
TmpDir %[3]s
ServerLog %[4]s/server.log
AccessLog %[4]s/access.log
ModulesDir %[5]s
ServicesDir %[5]s
TemplateDir /usr/share/c_icap/templates/
TemplateDefaultLanguage en
LoadMagicFile /etc/c-icap/c-icap.magic
DebugLevel 1
Module common clamd_mod.so
clamd_mod.ClamdSocket %[6]s
Service %[7]s virus_scan.so
ServiceAlias %[8]s virus_scan?allow204=on&sizelimit=off&mode=simple
virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE
virus_scan.DefaultEngine clamd
virus_scan.MaxObjectSize 100M
`, sock, s.Addr, tmp, s.dir, ModuleDir(), clamdSock, ServiceDefault, Service)
	if root {
		ic += "User root\nGroup root\n"
	}
	if err := os.WriteFile(s.conf, []byte(ic), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the ICAP URI of Service.
func (s *Server) URL() string { return "icap://" + s.Addr + "/" + Service }

// URLDefault is the ICAP URI of ServiceDefault.
func (s *Server) URLDefault() string { return "icap://" + s.Addr + "/" + ServiceDefault }

// Threat is the name ClamAV gives the i-th infected file.
func (s *Server) Threat(i int) string { return s.threats[i] }

// Start runs c-icap (again, after Stop) and waits until it answers OPTIONS.
func (s *Server) Start() {
	s.t.Helper()
	if s.icap != nil {
		return
	}
	cmd := exec.Command(CICAPPath, "-N", "-f", s.conf)
	cmd.Stdout, cmd.Stderr = s.logFile("c-icap.out"), s.logFile("c-icap.out")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting c-icap: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.icap = cmd
	s.icapExited = exited
	if err := waitFor(exited, func() error { return options(s.Addr) }); err != nil {
		s.Stop()
		s.t.Fatalf("c-icap did not start: %v\n%s", err, s.tail("c-icap.out", "server.log"))
	}
}

// Stop stops c-icap (SIGTERM to its process group, SIGKILL after a while).
func (s *Server) Stop() {
	if s.icap == nil {
		return
	}
	stopGroup(s.icap, s.icapExited)
	s.icap = nil
	_ = os.Remove(filepath.Join(s.sock, "c-icap.pid"))
	_ = os.Remove(filepath.Join(s.sock, "c-icap.ctl"))
}

// Log is c-icap's server log (for a failing test's message).
func (s *Server) Log() string { return s.tail("server.log") }

func (s *Server) logFile(name string) *os.File {
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = f.Close() })
	return f
}

// tail is the last lines of the named files in the directory.
func (s *Server) tail(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		data, _ := os.ReadFile(filepath.Join(s.dir, n))
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", n, data)
	}
	return b.String()
}

func stopGroup(cmd *exec.Cmd, exited <-chan struct{}) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

func waitFor(exited <-chan struct{}, ready func() error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the program exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func pingClamd(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	b := make([]byte, 16)
	n, _ := c.Read(b)
	if !bytes.HasPrefix(b[:n], []byte("PONG")) {
		return fmt.Errorf("clamd answered %q to PING", b[:n])
	}
	return nil
}

// options asks the service's OPTIONS and wants a 200.
func options(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "OPTIONS icap://%s/%s ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n", addr, Service)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "ICAP/1.0 200") {
		return errors.New("OPTIONS answered " + strings.TrimSpace(line))
	}
	return nil
}
