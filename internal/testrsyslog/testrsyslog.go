package testrsyslog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftpsgate/ftpsgate/internal/testpki"
)

// EnvInterop is the switch that turns the tests with real programs on.
const EnvInterop = "FTPSGATE_INTEROP"

// RsyslogdPath is the program of Debian's rsyslog package.
const RsyslogdPath = "/usr/sbin/rsyslogd"

// ModuleDir is where Debian puts rsyslog's modules (the multiarch
// directory of the machine), "" when there is none.
func ModuleDir() string {
	m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so")
	if len(m) == 0 {
		return ""
	}
	return filepath.Dir(m[0])
}

// startTimeout bounds the wait for a new server to listen.
const startTimeout = 15 * time.Second

// sep separates the fields of a line of the output file.
const sep = " #|# " // in no header field; the MSG, which may hold it, comes last

// Server is a running rsyslogd.
type Server struct {
	UDPAddr string // 127.0.0.1:PORT, imudp
	TCPAddr string // 127.0.0.1:PORT, imptcp
	TLSAddr string // 127.0.0.1:PORT, imtcp with gtls
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (for 127.0.0.1, ::1 and localhost).
	CAFile  string
	Dir     string
	OutFile string // what rsyslog received, one line per message

	conf, pidFile, logPath string
	cmd                    *exec.Cmd
	done                   chan struct{}
	waitErr                error
}

// Require skips t unless the interop switch is on; with it on, a missing
// rsyslogd or gtls driver fails t.
func Require(t testing.TB) {
	t.Helper()
	if os.Getenv(EnvInterop) != "1" {
		t.Skipf("test with a real rsyslogd: set %s=1 to run it (then a missing rsyslogd is a failure)", EnvInterop)
	}
	if ModuleDir() == "" {
		t.Fatalf("no /usr/lib/*/rsyslog/lmnsd_gtls.so: install rsyslog-gnutls; with %s=1 a missing program is a failure", EnvInterop)
	}
	for _, p := range []string{RsyslogdPath, filepath.Join(ModuleDir(), "imptcp.so")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: install rsyslog (apt-get install rsyslog rsyslog-gnutls); with %s=1 a missing program is a failure", err, EnvInterop)
		}
	}
}

// Start runs a new rsyslogd and stops it when t ends. It calls Require.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	dir := t.TempDir()
	pki, err := testpki.WriteServer(dir, "testrsyslog CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		UDPAddr: "127.0.0.1:" + strconv.Itoa(freePort(t, "udp4")),
		TCPAddr: "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp4")),
		TLSAddr: "127.0.0.1:" + strconv.Itoa(freePort(t, "tcp4")),
		CAFile:  pki.CAFile,
		Dir:     dir,
		OutFile: filepath.Join(dir, "received.log"),
		conf:    filepath.Join(dir, "rsyslog.conf"),
		pidFile: filepath.Join(dir, "rsyslogd.pid"),
		logPath: filepath.Join(dir, "rsyslogd.log"),
	}
	if err := os.WriteFile(s.conf, []byte(s.config(pki)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	s.Start(t)
	return s
}

func (s *Server) config(pki *testpki.Files) string {
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	return fmt.Sprintf(`global(
	workDirectory=%q
	maxMessageSize="64k"
	defaultNetstreamDriverCAFile=%q
	defaultNetstreamDriverCertFile=%q
	defaultNetstreamDriverKeyFile=%q
)
module(load="imudp")
module(load="imptcp")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")

template(name="fields" type="list") {
	property(name="inputname") constant(value=%q)
	property(name="pri") constant(value=%q)
	property(name="timereported" dateFormat="rfc3339") constant(value=%q)
	property(name="hostname") constant(value=%q)
	property(name="app-name") constant(value=%q)
	property(name="procid") constant(value=%q)
	property(name="msgid") constant(value=%q)
	property(name="structured-data") constant(value=%q)
	property(name="msg")
	constant(value="\n")
}

ruleset(name="received") {
	action(type="omfile" file=%q template="fields" flushOnTXEnd="on" asyncWriting="off")
}

input(type="imudp" address="127.0.0.1" port=%q ruleset="received")
input(type="imptcp" address="127.0.0.1" port=%q ruleset="received")
input(type="imtcp" address="127.0.0.1" port=%q ruleset="received")
`, filepath.Join(s.Dir, "work"), pki.CAFile, pki.CertFile, pki.KeyFile,
		sep, sep, sep, sep, sep, sep, sep, sep,
		s.OutFile, port(s.UDPAddr), port(s.TCPAddr), port(s.TLSAddr))
}

// Start runs rsyslogd (again, after Stop) on the same ports and waits
// until its TCP and TLS ports accept connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	s.done = make(chan struct{})
	s.cmd = exec.Command(RsyslogdPath, "-n", "-f", s.conf, "-i", s.pidFile, "-M", ModuleDir())
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	cmd, done := s.cmd, s.done
	go func() { s.waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for _, addr := range []string{s.TCPAddr, s.TLSAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				t.Fatalf("rsyslogd exited before it listened (%v)\n%s", s.waitErr, s.LogTail())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd did not listen on %s within %s: %v\n%s", addr, startTimeout, err, s.LogTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Stop stops rsyslogd (SIGTERM: it closes its inputs and writes what it
// has queued) and waits until it is gone.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stop()
}

// Kill kills rsyslogd (SIGKILL: what it had read but not written is
// lost, as in a crash) and waits until it is gone.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Line is one message rsyslog received, in its RFC 5424 fields.
type Line struct {
	Input          string // imudp, imptcp, imtcp
	PRI            int
	Timestamp      string // RFC 3339
	Hostname       string
	AppName        string
	ProcID         string
	MsgID          string
	StructuredData string
	Msg            string
}

// Lines parses the output file (only complete lines).
func (s *Server) Lines() ([]Line, error) {
	b, err := os.ReadFile(s.OutFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil, nil
	}
	var out []Line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), sep, 9)
		if len(f) != 9 {
			return nil, fmt.Errorf("testrsyslog: line with %d fields: %q", len(f), sc.Text())
		}
		pri, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("testrsyslog: pri %q: %w", f[1], err)
		}
		out = append(out, Line{Input: f[0], PRI: pri, Timestamp: f[2], Hostname: f[3], AppName: f[4], ProcID: f[5], MsgID: f[6], StructuredData: f[7], Msg: f[8]})
	}
	return out, sc.Err()
}

// WaitLines waits until the output file has at least n lines and returns
// them.
func (s *Server) WaitLines(t testing.TB, n int, timeout time.Duration) []Line {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lines, err := s.Lines()
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslog wrote %d of %d lines within %s\n%s", len(lines), n, timeout, s.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// LogTail is the end of rsyslogd's own output.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "--- rsyslogd output (end) ---\n" + string(b)
}

func freePort(t testing.TB, network string) int {
	t.Helper()
	if network == "udp4" {
		pc, err := net.ListenPacket(network, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
