package testicap

import (
	"context"
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
	if why := Missing(); why != "" {
		t.Fatalf("%s=1 but %s", EnvInterop, why)
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
	if s.threats, err = WriteSignatures(context.Background(), s.dir, filepath.Join(db, "test.hsb"), "Ftpsgate.Test.Sig", infected); err != nil {
		t.Fatal(err)
	}
	f := Files{Run: sock, Logs: s.dir, DB: db, Tmp: tmp, ClamdSock: filepath.Join(sock, "clamd.sock")}
	c := Config{Root: os.Geteuid() == 0}
	clamdConf := filepath.Join(s.dir, "clamd.conf")
	if err := os.WriteFile(clamdConf, []byte(ClamdConf(f, c)), 0o600); err != nil {
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
	if err := waitFor(exited, func() error { return PingClamd(f.ClamdSock) }); err != nil {
		t.Fatalf("clamd did not start: %v\n%s", err, s.tail("clamd.out", "clamd.log"))
	}

	s.Addr = freePort(t)
	s.conf = filepath.Join(s.dir, "c-icap.conf")
	if err := os.WriteFile(s.conf, []byte(CICAPConf(f, s.Addr, c)), 0o600); err != nil {
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
	if err := waitFor(exited, func() error { return Options(s.Addr) }); err != nil {
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
